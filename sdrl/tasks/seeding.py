"""Seeds and generator states of a run: the basis of exact resume.

Everything random in a run is a function of the run seed and a position (:func:`mix_seed`),
and every training step reseeds the global generators (:func:`reseed`) from its batch's
``aug_seed``; the generator states are also saved in each checkpoint (:func:`rng_state`).
"""

from __future__ import annotations

import contextlib
import random
from typing import Any

import numpy as np
import torch

__all__ = ["mix_seed", "reseed", "restore_rng_state", "rng_state"]


def mix_seed(*values: int) -> int:
    """A 63-bit seed from integers, well mixed (NumPy's ``SeedSequence``)."""
    entropy = [int(v) % (1 << 64) for v in values]
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0] >> np.uint64(1))


def reseed(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (all devices) global generators."""
    random.seed(seed)
    np.random.seed(seed % (1 << 32))  # noqa: NPY002 - the global state other code draws from
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """The Python, NumPy and torch (CPU and CUDA) generator states, as plain data."""
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # noqa: NPY002
    assert isinstance(keys, np.ndarray)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore the states saved by :func:`rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError):  # fewer GPUs than when saved
            torch.cuda.set_rng_state_all(state["cuda"])
