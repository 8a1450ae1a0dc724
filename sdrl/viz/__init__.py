"""Pictures for people: RGB composites of any band count, coloured masks, image grids."""

from sdrl.viz.preview import colorize, image_grid, to_rgb

__all__ = ["colorize", "image_grid", "to_rgb"]
