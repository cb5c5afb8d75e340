"""Optical flow: estimators (OpenCV DIS, torchvision RAFT), backward warping and occlusion masks.

    from vidcolor.flow import get_flow_estimator, warp, occlusion_mask
    est, used = get_flow_estimator("auto")      # used: "DIS (OpenCV, preset fast) - no GPU"
    fw = est(frame_a, frame_b)                  # (N, 2, H, W), warp(frame_b, fw) ~= frame_a
    bw = est(frame_b, frame_a)
    reliable = occlusion_mask(fw, bw)           # (N, 1, H, W), 1 = visible in both frames

See ``vidcolor.flow.warp`` for the conventions (pixels, dx/dy order, backward warping).
"""

from __future__ import annotations

import torch

from vidcolor.errors import InputError
from vidcolor.flow.base import FlowEstimator, to_grey
from vidcolor.flow.dis import DISFlow
from vidcolor.flow.warp import flow_gradients, occlusion_mask, resize_flow, warp

FLOW_CHOICES = ("auto", "dis", "raft_small", "raft_large")

__all__ = [
    "FLOW_CHOICES", "DISFlow", "FlowEstimator", "RAFTFlow", "flow_gradients", "get_flow_estimator",
    "occlusion_mask", "resize_flow", "to_grey", "warp",
]


def __getattr__(name: str):
    # RAFTFlow imports torchvision: only when asked for.
    if name == "RAFTFlow":
        from vidcolor.flow.raft import RAFTFlow

        return RAFTFlow
    raise AttributeError(f"module 'vidcolor.flow' has no attribute {name!r}")


def get_flow_estimator(name: str = "auto", device: str | torch.device | None = None,
                       allow_download: bool = True) -> tuple[FlowEstimator, str]:
    """Build a flow estimator by name and say which one is used.

    ``name``: ``"dis"`` (OpenCV DIS, CPU), ``"raft_small"`` / ``"raft_large"`` (torchvision RAFT,
    weights from the cache or downloaded), or ``"auto"``: RAFT on a GPU when its weights are
    already cached (large preferred, then small; never downloads), DIS otherwise.
    ``device``: where RAFT runs (default: CUDA if available).

    Returns ``(estimator, description)``, the description being one line for logs and reports.
    """
    if name not in FLOW_CHOICES:
        raise InputError(f"unknown flow estimator {name!r} (choose from {', '.join(FLOW_CHOICES)})")
    if name == "dis":
        est = DISFlow()
        return est, est.name
    from vidcolor.flow.raft import RAFTFlow, find_cached_weights

    if name in ("raft_small", "raft_large"):
        est = RAFTFlow(name.split("_", 1)[1], device=device, allow_download=allow_download)
        return est, est.name
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type == "cpu":
        est = DISFlow()
        return est, f"{est.name} - auto: no GPU"
    for size in ("large", "small"):
        if find_cached_weights(size) is not None:
            est = RAFTFlow(size, device=dev, allow_download=False)
            return est, f"{est.name} - auto: GPU with cached weights"
    est = DISFlow()
    return est, f"{est.name} - auto: RAFT weights not cached"
