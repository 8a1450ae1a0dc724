"""2D Swin → video Swin (torchvision's ``swin3d_t``): weights for clips of frames.

The video Swin (Liu et al., 2022) embeds patches of ``2 × 4 × 4`` (frames × rows × columns)
and attends within ``8 × 7 × 7`` token windows. A 2D Swin's weights become its weights by:

* **patch embedding**: the ``(D, C, 4, 4)`` kernel repeated over the 2 frames of a temporal
  patch and divided by 2, so a patch of two identical frames embeds as the 2D patch does;
* **relative-position bias tables**: the 2D table of each block, ``((2Wh-1)(2Ww-1), heads)``,
  repeated along the temporal offset axis to ``((2Wd-1)(2Wh-1)(2Ww-1), heads)``: the bias of a
  pair of tokens depends on their spatial offset only;
* **index buffers** (``relative_position_index``): the 3D model's own;
* **every other tensor** by name, the stages shifted by one (the 2D model's ``features.0`` is
  the patch embedding, the 3D model's ``patch_embed``).

So a clip of identical frames gives the 2D model's features on that frame, up to float
rounding, when torchvision computes both the same way: feature-map sides that are multiples of
the window (224 × 224 for Swin-T) and ``T / 2 <= 8`` or a multiple of 8 temporal tokens (other
clip lengths are padded in time with zeros). Shape letters: ``D`` embedding channels, ``C``
bands.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from torch import Tensor, nn
from torchvision.models.video.swin_transformer import SwinTransformer3d

__all__ = [
    "TEMPORAL_PATCH",
    "TEMPORAL_WINDOW",
    "build_swin3d",
    "inflate_swin",
    "pads_in_time",
    "swin3d_config",
]

TEMPORAL_PATCH = 2
"""Frames per patch of torchvision's ``swin3d_t``."""
TEMPORAL_WINDOW = 8
"""Temporal tokens per attention window of torchvision's ``swin3d_t``."""

SWIN3D_T = {
    "patch_size": [2, 4, 4],
    "embed_dim": 96,
    "depths": [2, 2, 6, 2],
    "num_heads": [3, 6, 12, 24],
    "window_size": [8, 7, 7],
}
"""The configuration of torchvision's ``swin3d_t``."""


def swin3d_config(config2d: Mapping[str, Any]) -> dict[str, Any]:
    """The video Swin matching a 2D Swin configuration (``patch_size``, ``embed_dim``...)."""
    return {
        "patch_size": [TEMPORAL_PATCH, *config2d["patch_size"]],
        "embed_dim": int(config2d["embed_dim"]),
        "depths": list(config2d["depths"]),
        "num_heads": list(config2d["num_heads"]),
        "window_size": [TEMPORAL_WINDOW, *config2d["window_size"]],
    }


def pads_in_time(frames: int) -> bool:
    """Whether torchvision's video Swin pads clips of ``frames`` frames in time."""
    tokens = -(-frames // TEMPORAL_PATCH)
    return frames % TEMPORAL_PATCH != 0 or (
        tokens > TEMPORAL_WINDOW and tokens % TEMPORAL_WINDOW != 0
    )


def build_swin3d(config: Mapping[str, Any], in_channels: int) -> nn.Module:
    """An empty torchvision video Swin for ``in_channels`` bands, its classifier ``Identity``.

    ``torchvision.models.video.swin3d_t(weights=None)`` for the Swin-T configuration, else a
    :class:`~torchvision.models.video.swin_transformer.SwinTransformer3d` of ``config``.
    """
    from torchvision.models.video import swin3d_t

    if dict(config) == SWIN3D_T:
        model: Any = swin3d_t(weights=None)
    else:
        model = SwinTransformer3d(
            patch_size=list(config["patch_size"]),
            embed_dim=int(config["embed_dim"]),
            depths=list(config["depths"]),
            num_heads=list(config["num_heads"]),
            window_size=list(config["window_size"]),
            stochastic_depth_prob=0.0,
        )
    patch = tuple(config["patch_size"])
    dim = int(config["embed_dim"])
    model.patch_embed.proj = nn.Conv3d(in_channels, dim, kernel_size=patch, stride=patch)
    model.head = nn.Identity()
    return model


def _key_2d(key: str) -> str:
    """The 2D Swin's name of a video Swin tensor."""
    if key.startswith("patch_embed.proj."):
        return "features.0.0." + key.removeprefix("patch_embed.proj.")
    if key.startswith("patch_embed.norm."):
        return "features.0.2." + key.removeprefix("patch_embed.norm.")
    if key.startswith("features."):
        stage, _, rest = key.removeprefix("features.").partition(".")
        return f"features.{int(stage) + 1}.{rest}"
    return key


def _extend_table(table: Tensor, window: list[int]) -> Tensor:
    """A 2D bias table ``((2Wh-1)(2Ww-1), heads)`` repeated over ``2Wd-1`` temporal offsets."""
    depth, rows, cols = (2 * w - 1 for w in window)
    if table.shape[0] != rows * cols:
        raise ValueError(
            f"a bias table of {tuple(table.shape)} does not fit a {window[1]}x{window[2]} window"
        )
    grid = table.reshape(1, rows * cols, table.shape[1])
    return grid.expand(depth, -1, -1).reshape(depth * rows * cols, table.shape[1])


def inflate_swin(state2d: Mapping[str, Tensor], model3d: nn.Module) -> dict[str, Tensor]:
    """The weights of ``model3d`` (a torchvision video Swin) made from a 2D Swin's.

    Args:
        state2d: The 2D Swin's tensors under torchvision's ``swin_t`` names, classifier
            excluded; the patch embedding ``features.0.0.weight`` is ``(D, C, p, p)``.
        model3d: The video Swin to fill (:func:`build_swin3d` with the same ``C``): its
            tensor names, shapes, windows and index buffers.

    Returns:
        A state dict that loads into ``model3d`` with ``strict=True``.

    Raises:
        ValueError: A tensor is missing, left over or does not fit (another architecture).
    """
    reference = model3d.state_dict()
    out: dict[str, Tensor] = {}
    used: set[str] = set()
    for key, target in reference.items():
        if key.endswith("relative_position_index"):
            out[key] = target.clone()
            continue
        name = _key_2d(key)
        if name not in state2d:
            raise ValueError(f"the 2D Swin has no {name} for the video Swin's {key}")
        tensor = state2d[name]
        used.add(name)
        if key == "patch_embed.proj.weight":
            frames = target.shape[2]
            tensor = tensor.unsqueeze(2).repeat(1, 1, frames, 1, 1) / frames
        elif key.endswith("relative_position_bias_table"):
            attention = model3d.get_submodule(key.rpartition(".")[0])
            window = [int(w) for w in cast("list[int]", attention.window_size)]
            tensor = _extend_table(tensor, window)
        if tensor.shape != target.shape:
            raise ValueError(
                f"{name} of shape {tuple(tensor.shape)} does not fit {key} of shape "
                f"{tuple(target.shape)}"
            )
        out[key] = tensor.to(target.dtype).contiguous().clone()
    left = [k for k in state2d if k not in used and not k.endswith("relative_position_index")]
    if left:
        raise ValueError(f"2D Swin tensors without a place in the video Swin: {left[:3]}")
    return out
