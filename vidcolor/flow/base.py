"""The ``FlowEstimator`` protocol and input checks shared by the backends."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from vidcolor.color import LUMA_709


@runtime_checkable
class FlowEstimator(Protocol):
    """Dense optical flow between two batches of frames.

    ``estimator(frames_a, frames_b)`` takes two tensors of the same shape, ``(N, 3, H, W)`` RGB or
    ``(N, 1, H, W)`` grey, float in [0, 1], and returns the flow from ``a`` to ``b``:
    ``(N, 2, H, W)`` float32 in pixels on the device of ``frames_a``, such that
    ``warp(frames_b, flow) ~= frames_a`` where both frames see the same point.
    ``name`` is a short human description (backend, preset, device) for reports.
    """

    name: str

    def __call__(self, frames_a: torch.Tensor, frames_b: torch.Tensor) -> torch.Tensor: ...


def check_pair(frames_a: torch.Tensor, frames_b: torch.Tensor) -> None:
    """Validate an estimator's inputs (see ``FlowEstimator``)."""
    for name, t in (("frames_a", frames_a), ("frames_b", frames_b)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4 or t.shape[1] not in (1, 3):
            raise ValueError(f"{name} must have shape (N, 3, H, W) or (N, 1, H, W), got {tuple(t.shape)}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be float in [0, 1], got {t.dtype}")
    if frames_a.shape != frames_b.shape:
        raise ValueError(f"frames_a and frames_b must have the same shape, got {tuple(frames_a.shape)} "
                         f"and {tuple(frames_b.shape)}")


def to_grey(frames: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` RGB -> ``(N, 1, H, W)`` Rec.709 luma; grey input is returned as is."""
    if frames.shape[1] == 1:
        return frames
    w = torch.tensor(LUMA_709, device=frames.device, dtype=frames.dtype).view(1, 3, 1, 1)
    return (frames * w).sum(1, keepdim=True)
