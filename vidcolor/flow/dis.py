"""OpenCV DIS optical flow (Kroeger et al., "Fast Optical Flow using Dense Inverse Search", ECCV 2016):
no weights, a few milliseconds per frame pair on one CPU core at a quarter of 480p."""

from __future__ import annotations

import numpy as np
import torch

from vidcolor.flow.base import check_pair, to_grey

PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}  # cv2.DISOPTICAL_FLOW_PRESET_*


class DISFlow:
    """``FlowEstimator`` backed by ``cv2.DISOpticalFlow``.

    Args:
        preset: ``"ultrafast"``, ``"fast"`` or ``"medium"`` (OpenCV presets: more patches and
            refinement iterations, slower and more accurate).
        downscale: factor >= 1: the grey frames are shrunk by this factor (area filter) before
            DIS and the flow is resized back and its vectors scaled, so the returned flow is in
            pixels of the input. 2 keeps most of the accuracy at a quarter of the cost.

    DIS computes ``I0(p) ~= I1(p + flow(p))`` on 8-bit grey frames, which is the ``FlowEstimator``
    convention (``warp(b, flow) ~= a``). Pairs are processed one by one (DIS has no batch mode);
    the result does not depend on how pairs are batched.
    """

    def __init__(self, preset: str = "fast", downscale: float = 1.0) -> None:
        if preset not in PRESETS:
            raise ValueError(f"DIS preset must be one of {sorted(PRESETS)}, got {preset!r}")
        if not float(downscale) >= 1.0:
            raise ValueError(f"downscale must be >= 1, got {downscale}")
        import cv2

        self._cv2 = cv2
        self.preset = preset
        self.downscale = float(downscale)
        self._dis = cv2.DISOpticalFlow_create(PRESETS[preset])
        self.name = f"DIS (OpenCV, preset {preset}" + (f", 1/{self.downscale:g} size" if self.downscale > 1 else "") + ")"

    def _grey_u8(self, frames: torch.Tensor) -> np.ndarray:
        grey = to_grey(frames.detach().float()).clamp(0, 1).mul(255).round().to(torch.uint8)
        return grey[:, 0].cpu().numpy()

    def __call__(self, frames_a: torch.Tensor, frames_b: torch.Tensor) -> torch.Tensor:
        check_pair(frames_a, frames_b)
        cv2 = self._cv2
        n, _, h, w = frames_a.shape
        small = (max(1, round(w / self.downscale)), max(1, round(h / self.downscale)))  # (w, h) for cv2
        a, b = self._grey_u8(frames_a), self._grey_u8(frames_b)
        out = np.empty((n, 2, h, w), dtype=np.float32)
        for i in range(n):
            ai, bi = a[i], b[i]
            if small != (w, h):
                ai = cv2.resize(ai, small, interpolation=cv2.INTER_AREA)
                bi = cv2.resize(bi, small, interpolation=cv2.INTER_AREA)
            flow = self._dis.calc(ai, bi, None)  # (h', w', 2) float32
            if small != (w, h):
                flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
                flow[..., 0] *= w / small[0]
                flow[..., 1] *= h / small[1]
            out[i] = flow.transpose(2, 0, 1)
        return torch.from_numpy(out).to(frames_a.device)

    def __repr__(self) -> str:
        return f"DISFlow(preset={self.preset!r}, downscale={self.downscale:g})"
