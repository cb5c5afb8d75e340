"""Measures of film defects in a video: the flicker index and a noise estimate (``vidcolor eval``).

Inputs are frames as ``vidcolor.metrics.as_frames`` takes them (torch ``(N, 3, H, W)`` float RGB in
[0, 1] or numpy uint8 ``(N, H, W, 3)``). ``FlickerMeter`` takes a video a chunk at a time and keeps
only its last working-size frame, so any chunking gives the same values.
"""

from __future__ import annotations


import numpy as np
import torch

from vidcolor.flow import FlowEstimator, occlusion_mask, to_grey, warp
from vidcolor.metrics import as_frames, mean_or_nan
from vidcolor.restore.filters import noise_sigma as frame_noise_sigma

__all__ = ["FlickerMeter", "noise_sigma", "working_luma"]


def working_luma(frames: torch.Tensor, size: int = 240) -> torch.Tensor:
    """(N, 3, H, W) RGB in [0, 1] -> (N, 1, h, w) Rec.709 luma, area-downscaled to a short side of
    at most ``size`` (the stabilizer's working frames)."""
    import cv2

    grey = to_grey(frames.float()).cpu()
    h, w = grey.shape[-2:]
    if min(h, w) <= size:
        return grey
    dsize = (max(8, round(w * size / min(h, w))), max(8, round(h * size / min(h, w))))
    small = [cv2.resize(g, dsize, interpolation=cv2.INTER_AREA) for g in grey[:, 0].numpy()]
    return torch.from_numpy(np.stack(small)).unsqueeze(1)


class FlickerMeter:
    """Streaming flicker index: the frame-to-frame change of mean luminance after motion compensation,

        flicker(t) = |mean_M(Y_t) - mean_M(warp(Y_{t-1}))| / mean_M(Y_t),   index = mean over t >= 1

    with ``Y`` the Rec.709 luma at a short side of 240 px (``working_luma``), the flow from t to t-1
    and back computed on this video itself, ``M`` the pixels that pass ``occlusion_mask``'s
    forward-backward and motion-boundary check and warp from inside the frame. A pair where fewer than
    20 % of the pixels are reliable (a scene cut) or whose mean luma is under 1 % (black) counts as
    nan and is left out of the index. 0 for steady exposure; an i.i.d. gain uniform in [1 - a, 1 + a]
    on static content gives about 2a/3.
    """

    MIN_RELIABLE, MIN_LUMA = 0.2, 0.01

    def __init__(self, flow_estimator: FlowEstimator, size: int = 240) -> None:
        self.flow_estimator, self.size = flow_estimator, size
        self.per_pair: list[float] = []
        self._last: torch.Tensor | None = None

    def update(self, frames: torch.Tensor | np.ndarray) -> None:
        y = working_luma(as_frames(frames), self.size)
        if self._last is not None:
            y = torch.cat([self._last, y])
        self._last = y[-1:].clone()
        if y.shape[0] < 2:
            return
        cur, prev = y[1:], y[:-1]
        fw = self.flow_estimator(cur, prev)   # t -> t-1: warp(prev, fw) ~= cur
        bw = self.flow_estimator(prev, cur)
        warped, inside = warp(prev, fw, return_mask=True)
        m = occlusion_mask(fw, bw) * inside
        n = m.flatten(1).sum(1)
        mean_cur = (cur * m).flatten(1).sum(1) / n.clamp(min=1)
        mean_prev = (warped * m).flatten(1).sum(1) / n.clamp(min=1)
        ok = (n >= self.MIN_RELIABLE * m[0].numel()) & (mean_cur >= self.MIN_LUMA)
        value = (mean_cur - mean_prev).abs() / mean_cur.clamp(min=self.MIN_LUMA)
        self.per_pair.extend(torch.where(ok, value, torch.full_like(value, float("nan"))).tolist())

    @property
    def value(self) -> float:
        return mean_or_nan(self.per_pair)


def noise_sigma(frames: torch.Tensor | np.ndarray) -> list[float]:
    """Noise sigma of each frame's Rec.709 luma on the 0-255 scale, Immerkaer, "Fast noise variance
    estimation", CVIU 1996: ``sqrt(pi/2) / (6 (W-2)(H-2)) sum |Y * N|`` with N the difference of two
    Laplacians [[1, -2, 1], [-2, 4, -2], [1, -2, 1]] (valid region; the restore stage's own estimate,
    ``vidcolor.restore.filters.noise_sigma``). Fine texture counts as noise too, so compare clips with
    the same content. Gaussian noise of sigma s in each RGB channel independently gives s * 0.749 on
    the luma."""
    y = to_grey(as_frames(frames)).float().cpu()
    h, w = y.shape[-2:]
    if min(h, w) < 3:
        raise ValueError(f"frames of {h}x{w} are too small for the noise estimate")
    return [255.0 * frame_noise_sigma(np.ascontiguousarray(f[0].numpy())) for f in y]