"""Batch-level augmentation of bitemporal batches on tensors, with kornia.

Shape letters as in :mod:`sdrl.data.samples`: ``B`` batch, ``C`` bands, ``H``/``W`` rows/columns,
``M`` mask tensors of a batch.

One geometric transform per sample is drawn once and applied to both dates and to every mask:
images are resampled bilinearly with zero padding (0 is the band mean after normalisation),
masks by nearest neighbour, and every mask pixel that comes from outside the image becomes
:data:`~sdrl.data.samples.IGNORE_INDEX`, never a class id. Photometric changes are drawn
independently for each date; they act on normalised data of any band count and never clip.
"""

from __future__ import annotations

from typing import Any, Literal

import kornia.augmentation as K
import torch
from kornia.geometry.transform import warp_perspective
from torch import Tensor, nn

from sdrl.data.samples import IGNORE_INDEX, IMAGE_KEYS, MASK_KEYS

__all__ = ["BitemporalAugment", "build_augment"]


def _check_prob(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], found {value}")


def _check_range(name: str, value: tuple[float, float], low: float, high: float) -> None:
    if len(value) != 2 or not low < value[0] <= value[1] <= high:
        raise ValueError(
            f"{name} must be (min, max) with {low} < min <= max <= {high}, found {value}"
        )


def _check_bound(name: str, value: float, high: float) -> None:
    if not 0.0 <= value < high:
        raise ValueError(f"{name} must lie in [0, {high}), found {value}")


class BitemporalAugment(nn.Module):
    """Shared geometry for both dates and all masks, independent photometry per date.

    Photometric changes come first (each date on its own draws), then one geometric transform
    per sample is applied to ``image_a``, ``image_b`` and every mask, so padded image pixels
    stay exactly 0 and padded mask pixels are :data:`~sdrl.data.samples.IGNORE_INDEX`.

    Args:
        geometric: Apply the geometric part.
        photometric: Apply the photometric part (``False`` gives geometry only).
        p_hflip: Probability of a horizontal flip.
        p_vflip: Probability of a vertical flip.
        p_rot90: Probability of a 90° rotation; with both flips at 0.5 the eight dihedral
            transforms are equally likely. Non-square tiles keep ``(H, W)``: corners are padded.
        crop_scale: Area fraction range of a random resized crop, applied to every sample and
            resized back to ``(H, W)``; ``None`` disables it.
        crop_ratio: Aspect ratio (width / height) range of the crop.
        p_affine: Probability of a small affine transform.
        degrees: Largest affine rotation, degrees.
        translate: Largest affine shift, fraction of the tile size.
        scale: Affine scale range.
        p_color: Probability (per sample and date) of brightness, contrast and band jitter.
        brightness: Largest additive shift, in band standard deviations, shared by all bands.
        contrast: Largest relative contrast change about each band's image mean: the factor is
            drawn from ``[1 - contrast, 1 + contrast]``.
        band_jitter: Largest per-band relative gain change and per-band additive shift.
        rgb_color_jitter: Also jitter hue and saturation; only valid for 3-band (RGB) input,
            where the bands are min-max scaled per image for the colour-space conversion.
        hue: Largest hue shift (fraction of the colour circle, at most 0.5).
        saturation: Largest relative saturation change.
        p_noise: Probability of additive gaussian noise.
        noise_std: Standard deviation of the noise, in band standard deviations.
        p_blur: Probability of a gaussian blur.
        blur_sigma: Range of the blur standard deviation, pixels.
        blur_kernel: Odd blur kernel size, pixels.

    Raises:
        ValueError: An argument is out of range.

    Random draws use the global torch generator, so ``torch.manual_seed`` makes results
    reproducible on a given device. Inputs may live on any device.

    Example::

        augment = BitemporalAugment()
        batch = augment(batch)  # same keys; images (B, C, H, W), masks (B, H, W) int64
    """

    def __init__(
        self,
        *,
        geometric: bool = True,
        photometric: bool = True,
        p_hflip: float = 0.5,
        p_vflip: float = 0.5,
        p_rot90: float = 0.5,
        crop_scale: tuple[float, float] | None = (0.5, 1.0),
        crop_ratio: tuple[float, float] = (3 / 4, 4 / 3),
        p_affine: float = 0.5,
        degrees: float = 15.0,
        translate: float = 0.05,
        scale: tuple[float, float] = (0.9, 1.1),
        p_color: float = 0.8,
        brightness: float = 0.2,
        contrast: float = 0.2,
        band_jitter: float = 0.05,
        rgb_color_jitter: bool = False,
        hue: float = 0.05,
        saturation: float = 0.2,
        p_noise: float = 0.2,
        noise_std: float = 0.05,
        p_blur: float = 0.2,
        blur_sigma: tuple[float, float] = (0.1, 1.0),
        blur_kernel: int = 5,
    ) -> None:
        super().__init__()
        for name, p in [
            ("p_hflip", p_hflip), ("p_vflip", p_vflip), ("p_rot90", p_rot90),
            ("p_affine", p_affine), ("p_color", p_color), ("p_noise", p_noise),
            ("p_blur", p_blur),
        ]:  # fmt: skip
            _check_prob(name, p)
        if crop_scale is not None:
            _check_range("crop_scale", crop_scale, 0.0, 1.0)
        _check_range("crop_ratio", crop_ratio, 0.0, float("inf"))
        _check_bound("degrees", degrees, 180.0)
        _check_bound("translate", translate, 1.0)
        _check_range("scale", scale, 0.0, float("inf"))
        _check_bound("brightness", brightness, float("inf"))
        _check_bound("contrast", contrast, 1.0)
        _check_bound("band_jitter", band_jitter, 1.0)
        _check_bound("saturation", saturation, 1.0)
        if not 0.0 <= hue <= 0.5:
            raise ValueError(f"hue must lie in [0, 0.5], found {hue}")
        _check_bound("noise_std", noise_std, float("inf"))
        _check_range("blur_sigma", blur_sigma, 0.0, float("inf"))
        if blur_kernel < 3 or blur_kernel % 2 == 0:
            raise ValueError(f"blur_kernel must be an odd integer >= 3, found {blur_kernel}")

        self.geometric = geometric
        self.photometric = photometric
        self.crop_scale = crop_scale
        self.crop_ratio = crop_ratio
        self.p_color, self.brightness, self.contrast = p_color, brightness, contrast
        self.band_jitter = band_jitter
        self.rgb_color_jitter = rgb_color_jitter
        self.p_noise, self.noise_std = p_noise, noise_std
        # Size-independent geometric steps; the resized crop needs (H, W) and is built per call.
        self._rigid = [
            K.RandomHorizontalFlip(p=p_hflip),
            K.RandomVerticalFlip(p=p_vflip),
            K.RandomRotation90(times=(1, 1), p=p_rot90),
            K.RandomAffine(
                degrees=degrees, translate=(translate, translate), scale=scale, p=p_affine
            ),
        ]
        self._rigid = [m for m in self._rigid if m.p > 0]
        self._rgb = K.ColorJitter(saturation=saturation, hue=hue, p=p_color)
        self._blur = K.RandomGaussianBlur(blur_kernel, blur_sigma, p=p_blur) if p_blur > 0 else None

    @classmethod
    def identity(cls) -> BitemporalAugment:
        """A configuration that returns the batch's tensors unchanged (for validation)."""
        return cls(geometric=False, photometric=False)

    def forward(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Augment a batch.

        Args:
            batch: A batch from :func:`sdrl.data.samples.collate`: images ``(B, C, H, W)``
                float under :data:`~sdrl.data.samples.IMAGE_KEYS`, masks ``(B, H, W)`` integer
                under :data:`~sdrl.data.samples.MASK_KEYS`; absent keys are skipped and every
                other key is passed through.

        Returns:
            A new dict with the same keys, shapes and dtypes.

        Raises:
            ValueError: ``rgb_color_jitter`` is set and the images do not have 3 bands.
        """
        out = dict(batch)
        images = [k for k in IMAGE_KEYS if isinstance(batch.get(k), Tensor)]
        masks = [k for k in MASK_KEYS if isinstance(batch.get(k), Tensor)]
        if self.photometric:
            for key in images:
                out[key] = self._photometric(batch[key])
        if self.geometric and (images or masks):
            out.update(self._geometry(out, images, masks))
        return out

    def _photometric(self, x: Tensor) -> Tensor:
        """Photometric jitter of one date ``(B, C, H, W)``, freshly drawn on each call."""
        b, c = x.shape[:2]
        if self.rgb_color_jitter and c != 3:
            raise ValueError(
                f"rgb_color_jitter=True needs 3-band (RGB) images, found {c} bands; "
                "set rgb_color_jitter=False for multispectral data"
            )
        # Per-sample parameters are drawn on the CPU, like kornia's; noise on the images' device.
        on = (torch.rand(b) < self.p_color).float()[:, None]
        contrast = 1 + self.contrast * (2 * torch.rand(b, 1) - 1) * on
        gain = contrast * (1 + self.band_jitter * (2 * torch.rand(b, c) - 1) * on)
        shift = self.brightness * (2 * torch.rand(b, 1) - 1) * on
        shift = shift + self.band_jitter * (2 * torch.rand(b, c) - 1) * on
        gain = gain.to(x)[..., None, None]
        offset = shift.to(x)[..., None, None] + x.mean(dim=(2, 3), keepdim=True) * (1 - gain)
        x = torch.addcmul(offset, x, gain)  # (x - mean) * gain + mean + shift
        if self.rgb_color_jitter:
            low = x.amin(dim=(1, 2, 3), keepdim=True)
            span = (x.amax(dim=(1, 2, 3), keepdim=True) - low).clamp_min(1e-6)
            x = self._rgb((x - low) / span) * span + low
        if self._blur is not None:
            x = self._blur(x)
        if self.p_noise > 0 and self.noise_std > 0:
            noisy = (torch.rand(b) < self.p_noise).nonzero().squeeze(1).to(x.device)
            noise = torch.randn((len(noisy), *x.shape[1:]), device=x.device, dtype=x.dtype)
            x = x.index_add(0, noisy, noise, alpha=self.noise_std)
        return x

    def _geometry(
        self, batch: dict[str, Any], images: list[str], masks: list[str]
    ) -> dict[str, Tensor]:
        """One geometric draw per sample, applied to every image and mask of ``batch``."""
        ref = batch[images[0] if images else masks[0]]
        b, height, width = ref.shape[0], ref.shape[-2], ref.shape[-1]
        steps: list[nn.Module] = []
        if self.crop_scale is not None:
            crop = K.RandomResizedCrop(
                (height, width), self.crop_scale, self.crop_ratio, cropping_mode="resample"
            )
            steps.append(crop)
        steps.extend(self._rigid)
        if not steps:
            return {}
        # kornia draws the parameters and composes the steps into one matrix per sample; a single
        # warp then resamples each tensor once (chained nearest warps would drift by a pixel).
        sequence = K.ImageSequential(*steps)
        shape = torch.Size((b, 1, height, width))
        params = sequence.forward_parameters(shape)
        probe = torch.zeros(()).expand(shape)
        matrix = sequence.get_transformation_matrix(probe, params, recompute=True)
        if matrix is None:
            return {}
        result: dict[str, Tensor] = {}
        if images:
            stacked = torch.cat([batch[k] for k in images], dim=1)
            warped = self._warp(stacked, matrix, "bilinear")
            sizes = [batch[k].shape[1] for k in images]
            result.update(zip(images, warped.split(sizes, dim=1), strict=True))
        if masks:
            # Labels shifted by one, so that the zero padding marks "outside the image".
            stacked = torch.stack([batch[k] for k in masks], dim=1).float() + 1
            labels = self._warp(stacked, matrix, "nearest").round().long() - 1
            labels[labels < 0] = IGNORE_INDEX
            for i, key in enumerate(masks):
                result[key] = labels[:, i].to(batch[key].dtype)
        return result

    @staticmethod
    def _warp(x: Tensor, matrix: Tensor, mode: str) -> Tensor:
        """Warp ``(B, C, H, W)`` by ``(B, 3, 3)`` pixel-coordinate matrices, zero padding."""
        return warp_perspective(
            x,
            matrix.to(x),
            dsize=(x.shape[-2], x.shape[-1]),
            mode=mode,
            padding_mode="zeros",
            align_corners=True,
        )


def build_augment(kind: Literal["full", "geometric", "none"], bands: int) -> BitemporalAugment:
    """The augmentation of each view.

    Args:
        kind: ``full`` (geometry and photometry), ``geometric`` (no photometric change) or
            ``none``.
        bands: Image bands; 3-band images also get hue and saturation jitter.

    Returns:
        The augmentation module (no parameters; draws from the global torch generator).
    """
    if kind == "none":
        return BitemporalAugment.identity()
    return BitemporalAugment(photometric=kind == "full", rgb_color_jitter=bands == 3)
