"""Pictures for people: RGB composites of any band count, coloured masks, grids and figures.

:mod:`.preview` and :mod:`.change` build uint8 pictures with numpy only; :mod:`.figures`
draws report figures with matplotlib (imported on first use).
"""

from sdrl.viz.figures import loss_curves, picture_table, read_loss_log, score_bars
from sdrl.viz.preview import colorize, image_grid, to_rgb

__all__ = [
    "colorize",
    "image_grid",
    "loss_curves",
    "picture_table",
    "read_loss_log",
    "score_bars",
    "to_rgb",
]
