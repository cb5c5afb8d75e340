"""Video quality metrics: temporal stability (warping error, CDC), colour (colorfulness, CIEDE2000)
and fidelity to a reference (PSNR, SSIM).

Inputs: frames are torch tensors ``(3, H, W)`` or ``(N, 3, H, W)`` float RGB in [0, 1], or numpy
uint8 arrays ``(H, W, 3)`` / ``(N, H, W, 3)`` as decoders give them (converted with
``as_frames``). Every function documents its definition and source.

Streaming: ``WarpingErrorMeter`` and ``CDCMeter`` take a video one chunk at a time and keep only
the last frame(s), so ``vidcolor eval`` never holds a whole video; ``warping_error`` and ``cdc``
are the one-call versions (and the tests check that both agree for any chunking).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.color import rgb_to_lab
from vidcolor.flow import FlowEstimator, occlusion_mask, warp

__all__ = [
    "CDCMeter",
    "WarpingErrorMeter",
    "as_frames",
    "cdc",
    "ciede2000",
    "colorfulness",
    "delta_e_ciede2000",
    "psnr",
    "ssim",
    "warping_error",
]


def as_frames(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Frames as a float32 tensor ``(N, 3, H, W)`` in [0, 1].

    Accepts torch ``(3, H, W)`` / ``(N, 3, H, W)`` float in [0, 1] (returned as float32, batched)
    or numpy ``(H, W, 3)`` / ``(N, H, W, 3)`` uint8 (divided by 255) or float in [0, 1].
    """
    if isinstance(x, np.ndarray):
        if x.ndim not in (3, 4) or x.shape[-1] != 3:
            raise ValueError(f"numpy frames must have shape (H, W, 3) or (N, H, W, 3), got {x.shape}")
        t = torch.from_numpy(np.ascontiguousarray(x))
        t = t.float() / 255.0 if x.dtype == np.uint8 else t.float()
        t = t.permute(*range(t.dim() - 3), -1, -3, -2)
    elif isinstance(x, torch.Tensor):
        if x.dim() not in (3, 4) or x.shape[-3] != 3:
            raise ValueError(f"frames must have shape (3, H, W) or (N, 3, H, W), got {tuple(x.shape)}")
        t = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    else:
        raise TypeError(f"frames must be a torch.Tensor or numpy array, got {type(x).__name__}")
    return t.unsqueeze(0) if t.dim() == 3 else t


def _same_shape(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{what}: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}")


# -- warping error (Lai et al., ECCV 2018) ----------------------------------------------------------
class WarpingErrorMeter:
    """Streaming warping error, exactly as Lai et al., "Learning Blind Video Temporal Consistency",
    ECCV 2018, §5.1 and their ``evaluate_WarpError.py``:

        E_warp(O_{t-1}, O_t) = sum_p M_t(p) ||O_{t-1}(p) - warp(O_t, F_{t-1->t})(p)||^2 / (3 sum_p M_t(p))
        E_warp(video) = mean over the T-1 pairs

    with ``O`` the output frames (RGB in [0, 1]), the flow ``F_{t-1->t}`` and the non-occlusion mask
    ``M_t`` computed on the *input* video (``occlusion_mask``: forward-backward check and motion
    boundaries), warping with edge replication. The division by 3 is the channel count: their mask is
    read as a 3-channel image, so the error is the mean over non-occluded pixel *values*. When no
    pixel is reliable the sum is divided by all values (3HW), as in their code. Lai et al. use
    FlowNet2; here the flow comes from ``flow_estimator`` (DIS by default in ``vidcolor eval``), so
    absolute values are comparable between runs measured with the same estimator.
    """

    def __init__(self, flow_estimator: FlowEstimator) -> None:
        self.flow_estimator = flow_estimator
        self.per_pair: list[float] = []
        self.per_pair_input: list[float] = []  # the input's own warping error: the floor the flow allows
        self._last: tuple[torch.Tensor, torch.Tensor] | None = None

    def update(self, output_frames: torch.Tensor | np.ndarray, input_frames: torch.Tensor | np.ndarray) -> list[float]:
        """Add the next frames of the video (same count and size for output and input).
        Returns the errors of the pairs completed by this chunk."""
        out, inp = as_frames(output_frames), as_frames(input_frames)
        _same_shape(out, inp, "warping error: output and input frames")
        if self._last is not None:
            if self._last[0].shape[-2:] != out.shape[-2:]:
                raise ValueError(f"frame size changed from {tuple(self._last[0].shape[-2:])} to {tuple(out.shape[-2:])}")
            out = torch.cat([self._last[0][None], out])
            inp = torch.cat([self._last[1][None], inp])
        new: list[float] = []
        if out.shape[0] >= 2:
            prev_in, next_in = inp[:-1], inp[1:]
            fw = self.flow_estimator(prev_in, next_in).to(out.device)   # t-1 -> t: warp(I_t, fw) ~= I_{t-1}
            bw = self.flow_estimator(next_in, prev_in).to(out.device)
            mask = occlusion_mask(fw, bw)                                # (N, 1, H, W), 1 = non-occluded
            new = _pair_errors(out, fw, mask)
            self.per_pair.extend(new)
            self.per_pair_input.extend(_pair_errors(inp, fw, mask))  # same flow and mask: no extra cost
        self._last = (out[-1].clone(), inp[-1].clone())
        return new

    @property
    def value(self) -> float:
        """Mean over the pairs seen so far (nan before the second frame)."""
        return float(np.mean(self.per_pair)) if self.per_pair else float("nan")

    @property
    def input_value(self) -> float:
        """The same measure on the input video itself (what flow errors alone contribute)."""
        return float(np.mean(self.per_pair_input)) if self.per_pair_input else float("nan")


def _pair_errors(frames: torch.Tensor, fw: torch.Tensor, mask: torch.Tensor) -> list[float]:
    """Lai et al.'s per-pair error for consecutive ``frames`` (N+1, 3, H, W), flows ``fw`` (N, 2, H, W)
    from frame t-1 to t and non-occlusion masks (N, 1, H, W)."""
    diff2 = (warp(frames[1:], fw) - frames[:-1]) ** 2 * mask
    n_valid = mask.flatten(1).sum(1) * frames.shape[1]
    n_all = float(diff2[0].numel())
    n_valid = torch.where(n_valid > 0, n_valid, torch.full_like(n_valid, n_all))
    return (diff2.flatten(1).sum(1) / n_valid).tolist()


def warping_error(output_frames: torch.Tensor | np.ndarray, input_frames: torch.Tensor | np.ndarray,
                  flow_estimator: FlowEstimator) -> tuple[float, list[float]]:
    """Warping error of a whole clip (see ``WarpingErrorMeter`` for the definition).

    Args:
        output_frames: ``(T, 3, H, W)`` float RGB in [0, 1] (or uint8 numpy ``(T, H, W, 3)``).
        input_frames: the input video the output was made from, same shape; flow and occlusion are
            computed on it.
        flow_estimator: any ``FlowEstimator`` (``vidcolor.flow.DISFlow()``...).

    Returns:
        ``(mean, per_pair)``: the mean over the T-1 consecutive pairs and the list of pair errors
        (entry ``t-1`` is the error between frames t-1 and t).
    """
    meter = WarpingErrorMeter(flow_estimator)
    meter.update(output_frames, input_frames)
    return meter.value, list(meter.per_pair)


# -- CDC (TCVC, Liu et al. 2021) -----------------------------------------------------------------------
def _channel_histograms(frames: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [0, 1] -> (N, 3, 256) normalised histograms of the 8-bit values."""
    q = (frames.clamp(0, 1) * 255).round().to(torch.int64)
    n, c = q.shape[:2]
    offsets = (torch.arange(n * c) * 256).view(n, c, 1)
    counts = torch.bincount((q.flatten(2) + offsets).flatten(), minlength=n * c * 256).view(n, c, 256)
    return (counts.double() / q[0, 0].numel()).numpy()


def _js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence (natural log, as ``scipy.stats.entropy``) along the last axis."""
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log(p / m), 0.0).sum(-1)
        kl_q = np.where(q > 0, q * np.log(q / m), 0.0).sum(-1)
    return 0.5 * kl_p + 0.5 * kl_q


class CDCMeter:
    """Streaming Color Distribution Consistency, as defined by TCVC (Liu et al., "Temporally Consistent
    Video Colorization with Deep Feature Propagation and Self-regularization Learning", 2021, §4.1;
    ``codes/eval_results.py``: ``compute_JS_bgr`` and ``calculate_folders_multiple``):

        CDC = 1/3 sum_{c in R,G,B} sum_{D in {1,2,4}} 1/3 mean_t JS(h_c(t), h_c(t+D))

    with ``h_c`` the 256-bin histogram of 8-bit channel ``c`` normalised by the pixel count and JS the
    Jensen-Shannon divergence (natural log). Lower is more stable; a static clip gives 0. A dilation
    whose mean is undefined (clip shorter than D+1 frames) is left out of the average.
    """

    DILATIONS = (1, 2, 4)

    def __init__(self) -> None:
        self._recent: deque[np.ndarray] = deque(maxlen=max(self.DILATIONS))
        self._sums = {d: np.zeros(3) for d in self.DILATIONS}
        self._counts = {d: 0 for d in self.DILATIONS}

    def update(self, frames: torch.Tensor | np.ndarray) -> None:
        for hist in _channel_histograms(as_frames(frames)):
            for d in self.DILATIONS:
                if len(self._recent) >= d:
                    self._sums[d] += _js_divergence(self._recent[-d], hist)
                    self._counts[d] += 1
            self._recent.append(hist)

    @property
    def value(self) -> float:
        per_d = [self._sums[d] / self._counts[d] for d in self.DILATIONS if self._counts[d]]
        if not per_d:
            return float("nan")
        return float(np.mean(np.mean(per_d, axis=0)))  # equal weights 1/3 over D, then mean over channels


def cdc(frames: torch.Tensor | np.ndarray) -> float:
    """CDC of a whole clip ``(T, 3, H, W)`` (see ``CDCMeter`` for the definition and source)."""
    meter = CDCMeter()
    meter.update(frames)
    return meter.value


# -- colour --------------------------------------------------------------------------------------------
def colorfulness(frame: torch.Tensor | np.ndarray) -> float:
    """Colorfulness M of one frame, Hasler & Süsstrunk, "Measuring colourfulness in natural images",
    SPIE Human Vision and Electronic Imaging 2003, §3 (metric M^(3)):

        rg = R - G,  yb = (R + G)/2 - B   (sRGB values on the 0..255 scale)
        M = sqrt(std(rg)^2 + std(yb)^2) + 0.3 sqrt(mean(rg)^2 + mean(yb)^2)

    0 for a grey frame; about 15 "slightly", 33 "moderately", 59 "quite", 82 "highly" colourful
    (their Table 2). Population standard deviation over all pixels.
    """
    f = as_frames(frame)
    if f.shape[0] != 1:
        raise ValueError(f"colorfulness takes one frame, got {f.shape[0]}")
    r, g, b = (f[0].double() * 255).unbind(0)
    rg = r - g
    yb = 0.5 * (r + g) - b
    std = math.sqrt(rg.var(unbiased=False).item() + yb.var(unbiased=False).item())
    mean = math.sqrt(rg.mean().item() ** 2 + yb.mean().item() ** 2)
    return std + 0.3 * mean


def ciede2000_g(a1: torch.Tensor, b1: torch.Tensor, a2: torch.Tensor, b2: torch.Tensor) -> torch.Tensor:
    """CIEDE2000's a* stretch G of a colour pair (Sharma et al. 2005, eqs. 2-4): a' = a (1 + G)."""
    c_bar = 0.5 * (torch.hypot(a1, b1) + torch.hypot(a2, b2))
    c7 = c_bar**7
    return 0.5 * (1 - torch.sqrt(c7 / (c7 + 25.0**7)))                                     # (4)


def ciede2000_weights(c1p: torch.Tensor, c2p: torch.Tensor, h1p: torch.Tensor,
                      h2p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CIEDE2000's chroma and hue weights of a colour pair from C' and h' (radians in [0, 2π)):
    ``(S_C, S_H, R_T)``, eqs. (13)-(17) and (19)-(21) of Sharma et al. 2005."""
    zero = c1p * c2p == 0  # a grey colour: its hue is undefined
    h_sum = h1p + h2p                                                                      # (14)
    wrap_up = (torch.abs(h1p - h2p) > math.pi) & (h_sum < 2 * math.pi)
    wrap_down = (torch.abs(h1p - h2p) > math.pi) & (h_sum >= 2 * math.pi)
    hp_bar = torch.where(zero, h_sum, (h_sum + 2 * math.pi * wrap_up - 2 * math.pi * wrap_down) / 2)
    t = (1 - 0.17 * torch.cos(hp_bar - math.radians(30)) + 0.24 * torch.cos(2 * hp_bar)
         + 0.32 * torch.cos(3 * hp_bar + math.radians(6)) - 0.20 * torch.cos(4 * hp_bar - math.radians(63)))  # (15)
    d_theta = math.radians(30) * torch.exp(-(((torch.rad2deg(hp_bar) - 275) / 25) ** 2))  # (16)
    cp_bar = 0.5 * (c1p + c2p)                                                             # (13)
    cp7 = cp_bar**7
    r_c = 2 * torch.sqrt(cp7 / (cp7 + 25.0**7))                                            # (17)
    s_c = 1 + 0.045 * cp_bar                                                               # (19)
    s_h = 1 + 0.015 * cp_bar * t                                                           # (20)
    return s_c, s_h, -torch.sin(2 * d_theta) * r_c                                         # (21)


def delta_e_ciede2000(lab1: torch.Tensor, lab2: torch.Tensor, kL: float = 1.0, kC: float = 1.0,
                      kH: float = 1.0) -> torch.Tensor:
    """Per-pixel CIEDE2000 colour difference of two Lab tensors ``(*, 3, H, W)`` -> ``(*, H, W)``.

    Sharma, Wu & Dalal, "The CIEDE2000 color-difference formula: implementation notes, supplementary
    test data, and mathematical observations", Color Res. Appl. 2005, eqs. (1)-(22); the same
    formula as ``skimage.color.deltaE_ciede2000`` (the tests compare both).
    """
    if lab1.shape != lab2.shape or lab1.dim() < 3 or lab1.shape[-3] != 3:
        raise ValueError(f"Lab tensors must share a (*, 3, H, W) shape, got {tuple(lab1.shape)} and {tuple(lab2.shape)}")
    L1, a1, b1 = lab1.double().unbind(-3)
    L2, a2, b2 = lab2.double().unbind(-3)
    g = ciede2000_g(a1, b1, a2, b2)
    a1p, a2p = a1 * (1 + g), a2 * (1 + g)                                                 # (5)
    c1p, c2p = torch.hypot(a1p, b1), torch.hypot(a2p, b2)                                 # (6)
    h1p = torch.atan2(b1, a1p) % (2 * math.pi)                                            # (7)
    h2p = torch.atan2(b2, a2p) % (2 * math.pi)
    dLp = L2 - L1                                                                         # (8)
    dCp = c2p - c1p                                                                       # (9)
    dhp = h2p - h1p                                                                       # (10)
    dhp = torch.where(dhp > math.pi, dhp - 2 * math.pi, dhp)
    dhp = torch.where(dhp < -math.pi, dhp + 2 * math.pi, dhp)
    dhp = torch.where(c1p * c2p == 0, torch.zeros_like(dhp), dhp)
    dHp = 2 * torch.sqrt(c1p * c2p) * torch.sin(dhp / 2)                                  # (11)
    Lp_bar = 0.5 * (L1 + L2)                                                              # (12)
    s_l = 1 + 0.015 * (Lp_bar - 50) ** 2 / torch.sqrt(20 + (Lp_bar - 50) ** 2)            # (18)
    s_c, s_h, r_t = ciede2000_weights(c1p, c2p, h1p, h2p)
    l_term, c_term, h_term = dLp / (kL * s_l), dCp / (kC * s_c), dHp / (kH * s_h)
    return torch.sqrt(l_term**2 + c_term**2 + h_term**2 + r_t * c_term * h_term)  # (22)


def ciede2000(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """Mean CIEDE2000 difference between two RGB frames or clips (sRGB -> CIE Lab D65, then
    ``delta_e_ciede2000`` per pixel, averaged over all pixels and frames). About 1 is just noticeable."""
    fa, fb = as_frames(a), as_frames(b)
    _same_shape(fa, fb, "ciede2000")
    return float(delta_e_ciede2000(rgb_to_lab(fa), rgb_to_lab(fb)).mean())


# -- fidelity to a reference ----------------------------------------------------------------------------
def psnr(output: torch.Tensor | np.ndarray, reference: torch.Tensor | np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio ``10 log10(data_range^2 / MSE)`` in dB, per frame (all channels),
    averaged over frames. One frame gives the same value as
    ``skimage.metrics.peak_signal_noise_ratio(reference, output, data_range=1)``; identical frames give inf."""
    o, r = as_frames(output), as_frames(reference)
    _same_shape(o, r, "psnr")
    mse = ((o.double() - r.double()) ** 2).flatten(1).mean(1)
    return float((10 * torch.log10(data_range**2 / mse)).mean())


def _ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float, win: int) -> torch.Tensor:
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    n = win * win
    cov_norm = n / (n - 1)  # sample covariance, skimage's default use_sample_covariance=True

    def filt(t: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(t, win, stride=1)  # uniform window, valid region only (skimage crops the border)

    ux, uy = filt(x), filt(y)
    vx = cov_norm * (filt(x * x) - ux * ux)
    vy = cov_norm * (filt(y * y) - uy * uy)
    vxy = cov_norm * (filt(x * y) - ux * uy)
    return ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))


def ssim(output: torch.Tensor | np.ndarray, reference: torch.Tensor | np.ndarray, data_range: float = 1.0,
         win_size: int = 7) -> float:
    """Structural similarity (Wang et al., IEEE TIP 2004) with scikit-image's defaults: 7x7 uniform
    window, K1 = 0.01, K2 = 0.03, sample covariance, computed per channel and averaged, border of
    ``win_size // 2`` excluded; then averaged over frames. Matches
    ``skimage.metrics.structural_similarity(reference, output, channel_axis=-1, data_range=1)``."""
    o, r = as_frames(output), as_frames(reference)
    _same_shape(o, r, "ssim")
    if min(o.shape[-2:]) < win_size:
        raise ValueError(f"frames of {tuple(o.shape[-2:])} are smaller than the {win_size}x{win_size} SSIM window")
    s = _ssim_map(o.double(), r.double(), data_range, win_size)
    return float(s.mean(dim=(1, 2, 3)).mean())


def mean_or_nan(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")
