"""The crop classifier's configuration and its three size presets.

:class:`CropModelConfig` is what a task (or a notebook) chooses; :data:`PRESETS` holds what a
``size`` means for each part of the model (:class:`CropSizes`):

=========  ======================================  ===========================================
size       temporal stream (video Swin, patch      EnMAP stream ("transformer")
           2x4x4)
=========  ======================================  ===========================================
``tiny``   embed 24, depths 1,1,1,1, heads         pixel d 8 (1 block), band d 8 (1 layer);
           1,1,2,2, window 8x4x4; decoder 16..8    for tests, well under 1 M parameters
``default``  Swin-T: embed 96, depths 2,2,6,2,     pixel d 192 (2 blocks), band d 128 (2 layers)
           heads 3,6,12,24, window 8x7x7 (loads
           an ``sdrl export --temporal`` of a
           ``swin_t``); decoder 512..64
``paper``  Swin-B: embed 128, depths 2,2,18,2,     pixel d 768 (6 blocks, 12 heads), band d 256
           heads 4,8,16,32, window 8x7x7;          (6 layers, 8 heads), as H2Crop; ≈ 175 M
           decoder 1024..128 (H2Crop's neck)       parameters with EnMAP
=========  ======================================  ===========================================

The ``tiny`` temporal stream has the shape of ``swin_tiny_test`` (embed 24), so an
export of that test backbone initialises it (the tests do this).
"""

from __future__ import annotations

from dataclasses import dataclass

from sdrl.models.backbones import BACKBONES

__all__ = ["PRESETS", "SPECTRAL_ENCODERS", "CropModelConfig", "CropSizes"]

SPECTRAL_ENCODERS = ("transformer", "resnet18", "swin_t")
"""The EnMAP encoders of the paper's comparison; any name of the backbone registry works too."""


@dataclass(frozen=True)
class CropSizes:
    """What one ``size`` preset builds.

    Attributes:
        embed_dim: Channels of the video Swin's first stage (stage ``i`` has ``embed_dim * 2**i``).
        depths: Swin blocks per stage (four stages).
        num_heads: Attention heads per stage.
        window: Attention window of the video Swin, ``(frames, rows, columns)`` in tokens.
        drop_path: Stochastic depth of the video Swin's last block.
        decoder: Channels of the temporal decoder at strides 32, 16, 8, 4.
        pixel_dim: Token width of the EnMAP pixel branch.
        pixel_depth: Swin blocks of the pixel branch.
        pixel_heads: Attention heads of the pixel branch.
        pixel_window: Side of the pixel branch's attention window, in EnMAP pixels.
        band_dim: Token width of the EnMAP band branch.
        band_depth: Transformer layers of the band branch.
        band_heads: Attention heads of the band branch.
        band_grid: Side of the grid each band's map is pooled to (``band_grid**2`` values).
        spectral_dim: Channels of the EnMAP stream's output at the S2 grid.
        fused_dim: Channels after late fusion (the heads' shared input).
    """

    embed_dim: int
    depths: tuple[int, int, int, int]
    num_heads: tuple[int, int, int, int]
    window: tuple[int, int, int]
    drop_path: float
    decoder: tuple[int, int, int, int]
    pixel_dim: int
    pixel_depth: int
    pixel_heads: int
    pixel_window: int
    band_dim: int
    band_depth: int
    band_heads: int
    band_grid: int
    spectral_dim: int
    fused_dim: int


PRESETS: dict[str, CropSizes] = {
    "tiny": CropSizes(
        embed_dim=24,
        depths=(1, 1, 1, 1),
        num_heads=(1, 1, 2, 2),
        window=(8, 4, 4),
        drop_path=0.0,
        decoder=(16, 16, 8, 8),
        pixel_dim=8,
        pixel_depth=1,
        pixel_heads=1,
        pixel_window=4,
        band_dim=8,
        band_depth=1,
        band_heads=1,
        band_grid=2,
        spectral_dim=8,
        fused_dim=16,
    ),
    "default": CropSizes(
        embed_dim=96,
        depths=(2, 2, 6, 2),
        num_heads=(3, 6, 12, 24),
        window=(8, 7, 7),
        drop_path=0.1,
        decoder=(512, 256, 128, 64),
        pixel_dim=192,
        pixel_depth=2,
        pixel_heads=6,
        pixel_window=8,
        band_dim=128,
        band_depth=2,
        band_heads=4,
        band_grid=8,
        spectral_dim=64,
        fused_dim=128,
    ),
    "paper": CropSizes(
        embed_dim=128,
        depths=(2, 2, 18, 2),
        num_heads=(4, 8, 16, 32),
        window=(8, 7, 7),
        drop_path=0.2,
        decoder=(1024, 512, 256, 128),
        pixel_dim=768,
        pixel_depth=6,
        pixel_heads=12,
        pixel_window=8,
        band_dim=256,
        band_depth=6,
        band_heads=8,
        band_grid=16,
        spectral_dim=128,
        fused_dim=256,
    ),
}
"""The size presets (module table)."""


@dataclass(frozen=True)
class CropModelConfig:
    """The hierarchical dual-stream crop classifier to build (:func:`build_crop_model`).

    Attributes:
        num_classes: Classes of each taxonomy level, background included (``K_l + 1``).
        s2_bands: Bands ``C`` of the Sentinel-2 time series.
        months: Frames ``T`` of the time series (the model is built for exactly this many).
        enmap_bands: Bands of the EnMAP cube; 0 builds the S2-only model (no EnMAP stream).
        size: ``"tiny"``, ``"default"`` or ``"paper"`` (:data:`PRESETS`).
        spectral_encoder: ``"transformer"`` (H2Crop's two-branch stream) or a backbone name of
            :data:`~sdrl.models.backbones.BACKBONES` (``"resnet18"``, ``"swin_t"``...) whose
            first layer takes the EnMAP bands.
        priors: Each level's head also takes the one-hot prior map of its level.
    """

    num_classes: tuple[int, ...]
    s2_bands: int = 10
    months: int = 12
    enmap_bands: int = 218
    size: str = "default"
    spectral_encoder: str = "transformer"
    priors: bool = False

    def __post_init__(self) -> None:
        classes = tuple(self.num_classes)
        if not classes or any(isinstance(k, bool) or int(k) != k or k < 2 for k in classes):
            raise ValueError(
                "num_classes must list at least one level of at least 2 classes (background "
                f"included), got {self.num_classes!r}"
            )
        object.__setattr__(self, "num_classes", tuple(int(k) for k in classes))
        for name, low in (("s2_bands", 1), ("months", 1), ("enmap_bands", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.size not in PRESETS:
            raise ValueError(f"unknown size {self.size!r}; choose one of {', '.join(PRESETS)}")
        if self.spectral_encoder != "transformer" and self.spectral_encoder not in BACKBONES:
            raise ValueError(
                f"unknown spectral_encoder {self.spectral_encoder!r}; choose transformer or a "
                f"backbone: {', '.join(BACKBONES)}"
            )

    @property
    def levels(self) -> int:
        """Taxonomy levels ``L``."""
        return len(self.num_classes)

    @property
    def sizes(self) -> CropSizes:
        """The preset of :attr:`size`."""
        return PRESETS[self.size]
