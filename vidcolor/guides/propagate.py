"""Carrying guide chroma through a shot: optical flow from the guides, exemplar matching elsewhere.

All of it works at the colorizer's working size, on CIE L* and a*b* (the film's own L* is kept;
guides only give chroma). Three sources, fused per pixel (:func:`fuse`):

1. **Flow carriers** (:class:`Carrier`): a guide's a*b* and confidence are warped frame by frame
   with the flow between consecutive frames, forward in the main pass and backward (from the next
   guide) in the planning pass (:mod:`vidcolor.guides.plan`). Each step multiplies the confidence
   by the stabilizer's test (:meth:`vidcolor.stages.stabilize.Stabilize.confidence`: forward-backward
   and motion-boundary checks of Lai et al. 2018, a photometric check after removing a global
   brightness change, inside the frame, eroded), so disoccluded and mistracked pixels lose their
   trust and never regain it.
2. **Exemplar matching** (:func:`exemplar_chroma`): each pixel takes the a*b* of the pixels of the
   shot's guide frames whose colorizer features look alike (attention over the guide frames, on the
   network's decoder features at stride 4 and encoder features at stride 8, averaged over ``POOL`` x
   ``POOL`` cells, cosine similarity with temperature ``TAU``): what a new object or a disoccluded region is given when flow cannot reach it.
   Features come from models that provide them (``EffUNetColorizer.ab_and_features``); without
   them the automatic colorizer's chroma takes this place.
3. The **automatic colorizer**: shots with no guide are left to it entirely.

The two carriers are blended by their confidence and their distance in frames to their guides
(linearly, the nearer guide weighing more); the confidence of the blend decides between it and the
exemplar colour. The weights were chosen on the eval clips' first 48 frames
(``docs/models/evaluate_guided.py``; the figures are in ``docs/guided.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vidcolor.flow import warp
from vidcolor.stages.stabilize import Stabilize

TAU = 0.02          # temperature of the exemplar attention (cosine similarities)
FEATURE_STRIDE = 4  # of the features the model gives for exemplar matching
POOL = 2            # feature cells averaged into one exemplar grid cell (stride 8 of the working size)


def flow_test(flow: str = "dis", photo_tol: float = 0.05, device: str | torch.device | None = None) -> Stabilize:
    """The stabilizer whose flow and confidence test the carriers use (never its blending)."""
    return Stabilize(strength=1.0, flow=flow, mode="ab", flow_size=1 << 12, photo_tol=photo_tol,
                     device=device, threads=0)


@dataclass
class Carrier:
    """A guide's chroma on its way through a shot: ``ab`` ``(2, h, w)`` a*b*, ``conf`` ``(1, h, w)``
    in [0, 1], ``L`` ``(1, h, w)`` the L* of the frame they belong to, ``source`` the guide's frame."""

    ab: torch.Tensor
    conf: torch.Tensor
    L: torch.Tensor
    source: int

    def step(self, test: Stabilize, L_next: torch.Tensor) -> None:
        """Move to the neighbouring frame whose L* is ``L_next`` ``(1, h, w)`` (either direction)."""
        cur = (L_next.float() / 100).clamp(0, 1)[None]
        prev = (self.L.float() / 100).clamp(0, 1)[None]
        fw, conf, _ = test.confidence(cur, prev)  # warp(prev, fw) ~= cur
        self.advance(fw[0], conf[0], L_next)

    def advance(self, flow: torch.Tensor, conf: torch.Tensor, L_next: torch.Tensor) -> None:
        """``step`` with the flow ``(2, h, w)`` from the next frame to this one and its confidence
        ``(1, h, w)`` already known (the stabilizer's, for the same pair of frames)."""
        self.ab = warp(self.ab[None], flow[None])[0]
        self.conf = warp(self.conf[None], flow[None])[0].mul_(conf).clamp_(0, 1)
        self.L = L_next


def pooled(features: torch.Tensor, pool: int = POOL) -> torch.Tensor:
    """Features ``(..., C, h, w)`` averaged over ``pool`` x ``pool`` cells (the exemplar grid)."""
    if pool == 1:
        return features.float()
    return F.avg_pool2d(features.float(), pool, ceil_mode=True)


def exemplar_chroma(features: torch.Tensor, guide_features: list[torch.Tensor], guide_ab: list[torch.Tensor],
                    size: tuple[int, int], tau: float = TAU, pool: int = POOL) -> torch.Tensor:
    """a*b* ``(2, *size)`` of a frame from its features ``(C, h4, w4)`` and its shot's guide frames'
    features (already :func:`pooled`) and a*b* (any size; shrunk to the grid): softmax attention of
    cosine similarities at temperature ``tau`` on the grid of ``pool`` x ``pool`` feature cells,
    bilinearly brought to ``size``."""
    grid = pooled(features, pool)
    c, h4, w4 = grid.shape
    query = F.normalize(grid.flatten(1), dim=0).T                                   # (P, C)
    keys = torch.cat([F.normalize(g.float().flatten(1), dim=0) for g in guide_features], dim=1)  # (C, K)
    values = torch.cat([F.interpolate(ab[None].float(), size=g.shape[-2:], mode="area")[0].flatten(1)
                        for ab, g in zip(guide_ab, guide_features)], dim=1)         # (2, K)
    weights = torch.softmax(query @ keys / tau, dim=1)                              # (P, K)
    ab = (weights @ values.T).T.reshape(1, 2, h4, w4)
    return F.interpolate(ab, size=size, mode="bilinear", align_corners=False)[0]


def fuse(auto_ab: torch.Tensor, forward: Carrier | None, backward: tuple[torch.Tensor, torch.Tensor, int] | None,
         index: int, exemplar: torch.Tensor | None) -> torch.Tensor:
    """The a*b* of frame ``index`` ``(2, h, w)``: the forward carrier (from the shot's last guide at
    or before ``index``) and the backward one (``(ab, conf, guide frame)`` from the next guide),
    blended by confidence and distance; where their confidence is low, ``exemplar`` (or, without
    it, the automatic colorizer's ``auto_ab``)."""
    fallback = exemplar if exemplar is not None else auto_ab
    parts = []
    if forward is not None:
        parts.append((forward.ab, forward.conf, abs(index - forward.source)))
    if backward is not None:
        parts.append((backward[0], backward[1], abs(backward[2] - index)))
    if not parts:
        return auto_ab
    if len(parts) == 1:
        ab, conf, _ = parts[0]
        return fallback + conf * (ab - fallback)
    (ab_f, c_f, d_f), (ab_b, c_b, d_b) = parts
    span = max(d_f + d_b, 1)
    w_f, w_b = c_f * (d_b / span), c_b * (d_f / span)
    total = w_f + w_b
    carried = (w_f * ab_f + w_b * ab_b) / total.clamp(min=1e-6)
    conf = torch.maximum(c_f, c_b)
    return fallback + conf * (carried - fallback)
