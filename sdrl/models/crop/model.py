"""The hierarchical dual-stream crop classifier (after H2Crop).

Shape letters: ``B`` batch, ``T`` frames (months), ``C`` S2 bands, ``H``/``W`` rows/columns of
the S2 grid (10 m), ``N`` EnMAP bands, ``h``/``w`` rows/columns of the EnMAP grid (30 m,
``h = H / 3``), ``L`` taxonomy levels, ``N_l = K_l + 1`` classes of level ``l``, ``F`` temporal
and ``E`` EnMAP feature channels.

::

    S2 (B, T, C, H, W) -> pad to 32 -> temporal (video Swin) -> temporal_decoder (fold T',
        U-Net) -> crop to (H, W) ............................................. (B, F, H, W)
    EnMAP (B, N, h, w) -> spectral (pixel + band transformers, or a 2D backbone),
        x3 to the S2 grid .................................................... (B, E, H, W)
    concatenation -> fusion (two 3x3 conv-BN-ReLU) -> heads ............... L x (B, N_l, H, W)

Count parameters with :func:`count_parameters` (``sum(p.numel() for p in model.parameters())``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sdrl.models.change import conv_bn_relu
from sdrl.models.crop.config import CropModelConfig
from sdrl.models.crop.heads import HierarchicalHeads
from sdrl.models.crop.spectral import BackboneSpectral, SpectralTransformer
from sdrl.models.crop.temporal import STRIDE, TemporalDecoder, TemporalEncoder, temporal_tokens

__all__ = ["CropModel", "build_crop_model", "count_parameters"]


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter values of ``module`` (works on the meta device too).

    Args:
        module: Any module.
        trainable_only: Count only parameters with ``requires_grad``.
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


class CropModel(nn.Module):
    """S2 temporal stream + EnMAP stream, late fusion, hierarchical heads (module doc).

    Build it with :func:`build_crop_model`.

    Args:
        config: What to build.

    Attributes:
        config: As given.
        temporal: The video Swin encoder (:class:`~sdrl.models.crop.temporal.TemporalEncoder`);
            an ``sdrl export --temporal`` loads into it
            (:func:`~sdrl.models.crop.init.init_temporal_from_export`).
        temporal_decoder: Time folding and U-Net to the S2 grid.
        spectral: The EnMAP encoder, ``None`` when ``config.enmap_bands == 0``.
        fusion: Concatenation of the streams, then convolutions.
        heads: The ``L`` cascaded heads.
    """

    def __init__(self, config: CropModelConfig) -> None:
        super().__init__()
        self.config = config
        sizes = config.sizes
        self.temporal = TemporalEncoder(
            config.s2_bands,
            embed_dim=sizes.embed_dim,
            depths=sizes.depths,
            num_heads=sizes.num_heads,
            window=sizes.window,
            drop_path=sizes.drop_path,
        )
        self.temporal_decoder = TemporalDecoder(
            self.temporal.channels, temporal_tokens(config.months), sizes.decoder
        )
        self.spectral: SpectralTransformer | BackboneSpectral | None = None
        if config.enmap_bands and config.spectral_encoder == "transformer":
            self.spectral = SpectralTransformer(
                config.enmap_bands,
                sizes.spectral_dim,
                pixel={
                    "dim": sizes.pixel_dim,
                    "depth": sizes.pixel_depth,
                    "heads": sizes.pixel_heads,
                    "window": sizes.pixel_window,
                },
                band={
                    "dim": sizes.band_dim,
                    "depth": sizes.band_depth,
                    "heads": sizes.band_heads,
                    "grid": sizes.band_grid,
                },
            )
        elif config.enmap_bands:
            self.spectral = BackboneSpectral(
                config.spectral_encoder, config.enmap_bands, sizes.spectral_dim
            )
        width = self.temporal_decoder.out_channels
        width += self.spectral.out_channels if self.spectral is not None else 0
        self.fusion = nn.Sequential(
            conv_bn_relu(width, sizes.fused_dim), conv_bn_relu(sizes.fused_dim, sizes.fused_dim)
        )
        self.heads = HierarchicalHeads(sizes.fused_dim, config.num_classes, config.priors)

    def encoder_modules(self) -> dict[str, nn.Module]:
        """The encoders, for layer-wise learning rates or freezing.

        Returns:
            ``{"temporal": self.temporal, "spectral": ...}``: the parts that
            :func:`~sdrl.models.crop.init.init_temporal_from_export` and
            :func:`~sdrl.models.crop.init.init_spectral_from_export` fill. ``"spectral"`` is
            the backbone of a backbone EnMAP encoder (its FPN and output conv, random, stay with
            the rest of the model), the whole stream for the ``"transformer"`` one (which no
            export initialises), and absent without EnMAP.
        """
        modules: dict[str, nn.Module] = {"temporal": self.temporal}
        if isinstance(self.spectral, BackboneSpectral):
            modules["spectral"] = self.spectral.backbone
        elif self.spectral is not None:
            modules["spectral"] = self.spectral
        return modules

    def forward(
        self, s2: Tensor, enmap: Tensor | None = None, prior: Tensor | None = None
    ) -> list[Tensor]:
        """Classify every pixel at every taxonomy level.

        Args:
            s2: ``(B, T, C, H, W)`` float, ``T = config.months``; any ``H``, ``W`` (padded to a
                multiple of 32 inside, the padding cropped from the result).
            enmap: ``(B, N, h, w)`` float with ``h ≈ H / 3``; ``None`` exactly when the model
                has no EnMAP stream.
            prior: ``(B, L, H, W)`` integer ids when built with priors, else ``None``; ids
                outside a level's classes mean "no prior" (a zero one-hot vector).

        Returns:
            ``L`` logits ``(B, N_l, H, W)``.

        Raises:
            ValueError: If an input is missing, unexpected or has the wrong shape.
        """
        self._check(s2, enmap, prior)
        height, width = s2.shape[-2:]
        clip = F.pad(s2.transpose(1, 2), (0, -width % STRIDE, 0, -height % STRIDE))
        features = self.temporal_decoder(self.temporal(clip))[..., :height, :width]
        if self.spectral is not None:
            assert enmap is not None
            spectral = self.spectral(enmap, (height, width))
            features = torch.cat([features, spectral], dim=1)
        return self.heads(self.fusion(features), prior)

    def _check(self, s2: Tensor, enmap: Tensor | None, prior: Tensor | None) -> None:
        config = self.config
        if s2.ndim != 5 or s2.shape[1] != config.months or s2.shape[2] != config.s2_bands:
            raise ValueError(
                f"s2 must be (B, T={config.months}, C={config.s2_bands}, H, W), got "
                f"{tuple(s2.shape)}; build the model with the data's months and bands"
            )
        batch, height, width = s2.shape[0], s2.shape[3], s2.shape[4]
        if self.spectral is None and enmap is not None:
            raise ValueError("the model has no EnMAP stream (enmap_bands=0) but got enmap")
        if self.spectral is not None and (
            enmap is None or enmap.ndim != 4 or enmap.shape[:2] != (batch, config.enmap_bands)
        ):
            found = "None" if enmap is None else str(tuple(enmap.shape))
            raise ValueError(
                f"enmap must be (B={batch}, N={config.enmap_bands}, h, w), got {found}"
            )
        expected = (batch, config.levels, height, width)
        if config.priors and (prior is None or tuple(prior.shape) != expected):
            found = "None" if prior is None else str(tuple(prior.shape))
            raise ValueError(f"prior must be (B, L, H, W) = {expected}, got {found}")
        if not config.priors and prior is not None:
            raise ValueError("the model was built without priors but got prior")


def build_crop_model(config: CropModelConfig) -> CropModel:
    """Build the crop classifier of ``config``, randomly initialised, in training mode.

    Args:
        config: What to build (:class:`~sdrl.models.crop.config.CropModelConfig`).

    Returns:
        The model. Initialise its encoders from sdrl exports with
        :func:`~sdrl.models.crop.init.init_temporal_from_export` and
        :func:`~sdrl.models.crop.init.init_spectral_from_export`.
    """
    return CropModel(config)
