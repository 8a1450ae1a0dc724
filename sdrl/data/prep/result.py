"""What a ``sdrl prep`` recipe wrote: one result type and its command-line summary line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PrepResult"]


@dataclass(frozen=True)
class PrepResult:
    """What a ``sdrl prep`` recipe wrote.

    Attributes:
        out: The dataset folder.
        tiles: Split name → number of tiles (or whole images) in its list.
        kind: Dataset kind written (``change`` or ``pretrain``).
        classes: Class names, index = class id.
        skipped: Tiles left out for having no data (empty or nodata in a date).
        dropped: Tiles written, then removed because they overlap a tile of another split.
        unit: What ``tiles`` counts (``tiles``, ``cities``...).
    """

    out: Path
    tiles: dict[str, int]
    kind: str = "change"
    classes: list[str] = field(default_factory=list)
    skipped: int = 0
    dropped: int = 0
    unit: str = "tiles"

    @property
    def total(self) -> int:
        """Number of tiles (or images) in the split lists."""
        return sum(self.tiles.values())

    def summary(self) -> str:
        """One line for the command line."""
        parts = ", ".join(f"{name} {n}" for name, n in self.tiles.items())
        text = f"wrote {self.total} {self.unit} to {self.out} ({parts}): {self.kind} dataset"
        if self.classes:
            text += f", classes {self.classes}"
        if self.skipped:
            text += f"; skipped {self.skipped} tiles without data"
        if self.dropped:
            text += f"; dropped {self.dropped} tiles overlapping another split"
        return text

    def __str__(self) -> str:
        return self.summary()
