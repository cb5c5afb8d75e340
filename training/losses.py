"""Loss terms of the training objectives (``training/objectives.py``) and the state they keep.

* GAN loss (LSGAN or vanilla) and the history pool of generated images that feeds the
  discriminators (Shrivastava et al. 2017, as upstream ``util/image_pool.py``).
* Temporal (as Lai et al., ECCV 2018, §3.2 short-term loss, and the ARCHITECTURE note):
  ``mean(M ⊙ |G(x_t) − warp(G(x_{t−1}), F_{t→t−1})|)`` with F computed on the *input* frames
  (DIS, or RAFT frozen) and M the forward-backward occlusion mask of Lai et al.
* CIEDE2000 term (``lambda_ciede``): the eval metric's per-pixel colour difference
  (Sharma et al. 2005) between output and truth, made differentiable at grey (``ciede2000_loss``).
* Class rebalancing of the colour regression (Zhang et al., ECCV 2016, §2.2, eq. 4):
  each target pixel's L1 is weighted by ``((1-λ) p̃(bin) + λ/Q)^-1`` (normalised to mean 1 over
  the data seen), with p̃ the smoothed empirical ab distribution, so rare saturated colours are not averaged
  into brown (the L1 minimiser is the conditional median, which desaturates multimodal colours).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vidcolor.flow import occlusion_mask, warp
from vidcolor.metrics import ciede2000_g, ciede2000_weights


# -- GAN loss and the discriminators' history pool -------------------------------------------------
class GANLoss(nn.Module):
    """Upstream ``networks.GANLoss``: ``lsgan`` = MSE to 1/0 (Mao et al. 2017), ``vanilla`` = BCE with
    logits (Goodfellow et al. 2014). Takes discriminator logits of any shape."""

    def __init__(self, mode: str = "lsgan"):
        super().__init__()
        if mode not in ("lsgan", "vanilla"):
            raise ValueError(f"gan mode must be 'lsgan' or 'vanilla', got {mode!r}")
        self.mode = mode

    def forward(self, prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        target = torch.full_like(prediction, 1.0 if target_is_real else 0.0)
        if self.mode == "lsgan":
            return F.mse_loss(prediction, target)
        return F.binary_cross_entropy_with_logits(prediction, target)


class ImagePool:
    """History of generated images (upstream ``util/image_pool.py``): ``query`` returns, per image,
    either the new image or (with probability 1/2, once the pool is full) a stored one that the new
    image replaces. Its random draws come from its own generator, saved with the pool."""

    def __init__(self, size: int = 50, seed: int = 0):
        self.size, self.images = int(size), []
        self.rng = np.random.default_rng([seed, 50])

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif self.rng.random() > 0.5:
                i = int(self.rng.integers(self.size))
                out.append(self.images[i].clone())
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        return {"images": [t.cpu() for t in self.images], "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.images = list(state["images"])
        self.rng.bit_generator.state = state["rng"]


# -- temporal loss -----------------------------------------------------------------------------------
def temporal_loss(outputs: torch.Tensor, flow: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Short-term temporal loss of a clip of outputs.

    Args:
        outputs: ``(B, T, C, H, W)`` generator outputs (any range), T >= 2.
        flow: ``(B, T-1, 2, H, W)`` pixels: entry t-1 is F_{t→t−1}, so ``warp(frame_{t-1}, F) ~= frame_t``.
        mask: ``(B, T-1, 1, H, W)`` in {0, 1}: 1 where frame t is visible in frame t-1.

    Returns:
        scalar: mean over masked values of ``|out_t − warp(out_{t−1}, F_{t→t−1})|`` (0 when no pixel
        is reliable).
    """
    if outputs.dim() != 5 or outputs.shape[1] < 2:
        raise ValueError(f"outputs must be (B, T>=2, C, H, W), got {tuple(outputs.shape)}")
    b, t, c, h, w = outputs.shape
    prev = outputs[:, :-1].reshape(b * (t - 1), c, h, w)
    cur = outputs[:, 1:].reshape(b * (t - 1), c, h, w)
    warped = warp(prev, flow.reshape(b * (t - 1), 2, h, w))
    m = mask.reshape(b * (t - 1), 1, h, w)
    diff = (cur - warped).abs() * m
    return diff.sum() / (m.sum() * c).clamp(min=1.0)


# -- colour-difference loss ----------------------------------------------------------------------------
def _sqrt0(x: torch.Tensor) -> torch.Tensor:
    """``sqrt(max(x, 0))`` with a zero (not NaN) gradient where ``x <= 0``."""
    pos = x > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, x, torch.ones_like(x))), torch.zeros_like(x))


def ciede2000_loss(ab: torch.Tensor, ab_true: torch.Tensor) -> torch.Tensor:
    """Per-pixel CIEDE2000 between ``(L, ab)`` and ``(L, ab_true)`` for any shared L*: the eval
    metric as a loss (a colorizer keeps the input's L*, so ΔL' = 0 and S_L does not enter).

    Args:
        ab, ab_true: ``(N, 2, H, W)`` a*, b* in CIE units (prediction, truth).

    Returns:
        ``(N, H, W)`` float32: the value of ``vidcolor.metrics.delta_e_ciede2000`` (Sharma et al.
        2005), with finite gradients everywhere, grey and exactly matching pixels included. Two
        changes make it differentiable: ΔH' comes from ``2 (C1' C2' − a1' a2' − b1 b2)`` (= ΔH'²,
        eq. 11 without the hue angles; its sign from the cross product), and the weights that
        depend on the colours' mean chroma and hue (G, S_C, S_H, R_T) are held constant in the
        backward pass, so the gradient pulls the prediction towards the truth in the metric's own
        weighting and never rewards adding chroma just to enlarge S_C. Computed in float64 (ΔH'²
        is a difference of nearly equal products).
    """
    a1, b1 = ab_true.double().unbind(1)
    a2, b2 = ab.double().unbind(1)
    with torch.no_grad():
        g = ciede2000_g(a1, b1, a2, b2)                                                    # (4)
    a1p, a2p = a1 * (1 + g), a2 * (1 + g)                                                  # (5)
    c1p, c2p = _sqrt0(a1p * a1p + b1 * b1), _sqrt0(a2p * a2p + b2 * b2)                    # (6)
    dCp = c2p - c1p                                                                        # (9)
    cross = a1p * b2 - b1 * a2p  # sign of h2' - h1'
    dHp = torch.where(cross < 0, -1.0, 1.0) * _sqrt0(2 * (c1p * c2p - a1p * a2p - b1 * b2))  # (11)
    with torch.no_grad():
        h1p = torch.atan2(b1, a1p) % (2 * math.pi)                                          # (7)
        h2p = torch.atan2(b2, a2p) % (2 * math.pi)
        s_c, s_h, r_t = ciede2000_weights(c1p, c2p, h1p, h2p)
    c_term, h_term = dCp / s_c, dHp / s_h
    return _sqrt0(c_term**2 + h_term**2 + r_t * c_term * h_term).float()                  # (22)


class TemporalTerm:
    """Flow and occlusion mask for clips, from a frozen estimator (``dis``, ``raft_small``, ``raft_large``)."""

    def __init__(self, flow: str = "dis", device: str | torch.device = "cpu"):
        import cv2

        from vidcolor.flow import get_flow_estimator

        # OpenCV's thread pool next to torch's on the same cores stalls training steps, and the
        # flows of small training crops gain nothing from threads.
        cv2.setNumThreads(1)
        self.estimator, self.name = get_flow_estimator(flow, device=device)

    @torch.no_grad()
    def flows(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``frames`` ``(B, T, C, H, W)`` in [0, 1] (C = 1 or 3) -> (F_{t→t−1} ``(B, T-1, 2, H, W)``,
        mask ``(B, T-1, 1, H, W)``)."""
        b, t, c, h, w = frames.shape
        cur = frames[:, 1:].reshape(-1, c, h, w).float()
        prev = frames[:, :-1].reshape(-1, c, h, w).float()
        back = self.estimator(cur, prev).to(frames.device)   # warp(prev, back) ~= cur
        fwd = self.estimator(prev, cur).to(frames.device)
        mask = occlusion_mask(back, fwd)                      # reliable pixels of frame t
        return back.view(b, t - 1, 2, h, w), mask.view(b, t - 1, 1, h, w)


# -- class rebalancing (Zhang et al. 2016) --------------------------------------------------------------
class ABPrior:
    """Running distribution of target ab over 10x10 bins in [-110, 110]^2 and Zhang's rebalancing
    weights. The histogram is a running sum (checkpointed), so weights follow the data seen."""

    BINS, STEP = 22, 10.0
    Q = 313  # in-gamut bins of the 10-unit ab grid (Zhang et al. 2016 §2.1)

    def __init__(self, lam: float = 0.5, sigma: float = 5.0):
        self.lam, self.sigma = float(lam), float(sigma)
        self.counts = torch.zeros(self.BINS * self.BINS, dtype=torch.float64)

    def bins(self, ab: torch.Tensor) -> torch.Tensor:
        """ab in Lab units ``(N, 2, H, W)`` -> bin index ``(N, 1, H, W)``."""
        q = ((ab + 110.0) / self.STEP).floor().clamp(0, self.BINS - 1).long()
        return q[:, :1] * self.BINS + q[:, 1:]

    def weights(self, ab: torch.Tensor) -> torch.Tensor:
        """Update the histogram with ``ab`` ``(N, 2, H, W)`` (Lab units) and return the per-pixel
        weights ``(N, 1, H, W)`` (mean 1 under the smoothed prior)."""
        idx = self.bins(ab)
        self.counts += torch.bincount(idx.flatten().cpu(), minlength=self.counts.numel()).double()
        p = (self.counts / self.counts.sum()).view(1, 1, self.BINS, self.BINS).float()
        k = torch.arange(-2, 3, dtype=torch.float32) * self.STEP
        g = torch.exp(-k**2 / (2 * self.sigma**2))
        g = g / g.sum()
        p = F.conv2d(F.conv2d(p, g.view(1, 1, 5, 1), padding=(2, 0)), g.view(1, 1, 1, 5), padding=(0, 2)).flatten()
        w = 1.0 / ((1 - self.lam) * p + self.lam / self.Q)
        # Zhang eq. 4 normalises E_p~[w] = 1 under the smoothed prior; we normalise under the
        # empirical distribution instead, so the weighted L1 keeps the scale of the plain L1 (and
        # lambda_l1 its meaning).
        emp = (self.counts / self.counts.sum()).float()
        w = w / (emp * w).sum()
        return w.to(ab.device)[idx]

    def state_dict(self) -> dict:
        return {"counts": self.counts.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.counts = state["counts"].clone()
