"""The restoration filters on one frame and its two motion-compensated neighbours (numpy + OpenCV).

All frames are (H, W, C) float32 in [0, 1], C = 3 (RGB) or 1 (luma); the neighbours are already
warped onto the frame and scaled to its brightness; decisions are made on luma and applied to every
channel.

- :func:`noise_sigma`: Immerkaer's estimate of the noise standard deviation ("Fast noise variance
  estimation", CVIU 1996): the Laplacian-difference mask cancels smooth image structure.
- :func:`find_dust`: dust specks and line scratches as *temporal outliers*: pixels that differ from
  both neighbours in the same direction by more than a threshold while the two neighbours agree
  (Kokaram's spike detection index), kept only in connected regions narrow in at least one
  direction (a flash or a fast object that fills a large area is not dust).
- :func:`temporal_average`: motion-compensated averaging with weights that fall to zero where a
  neighbour differs from the frame by more than its noise explains (occlusions, flow errors, new
  objects keep the frame's own pixels).
"""

from __future__ import annotations

import math

import numpy as np

_LAPLACE_DIFF = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def noise_sigma(luma: np.ndarray) -> float:
    """Noise standard deviation of ``luma`` (H, W) in its own units (Immerkaer 1996)."""
    import cv2

    h, w = luma.shape
    if h < 3 or w < 3:
        return 0.0
    resp = cv2.filter2D(luma, cv2.CV_32F, _LAPLACE_DIFF, borderType=cv2.BORDER_REPLICATE)[1:-1, 1:-1]
    return float(math.sqrt(math.pi / 2) * np.abs(resp).mean() / 6.0)


def find_dust(cur: np.ndarray, prev: np.ndarray, nxt: np.ndarray, valid: np.ndarray, threshold: float,
              max_width: int, sigma: float = 0.0, ring: int = 7) -> np.ndarray:
    """(H, W) uint8 mask, 1 on dust: luma ``cur``, warped neighbours ``prev`` and ``nxt`` (H, W),
    ``valid`` (H, W) where both neighbours are inside the frame; ``threshold``: the smallest
    difference that counts; ``sigma``: the frame's noise; regions wider than ``max_width`` pixels
    in both directions are left.

    A pixel is dust when it differs from both neighbours by more than ``threshold`` in the same
    direction, the neighbours agree with each other (within half the threshold and three times the
    noise), and around it (a (2 ring + 1)^2 box, the candidate pixels left out) both neighbours match
    the frame within what the noise explains: where the flow fails (fast motion, motion blur,
    occlusions) the surroundings do not match and nothing is taken for dust."""
    import cv2

    dp, dn = cv2.absdiff(cur, prev), cv2.absdiff(cur, nxt)
    least = cv2.min(dp, dn)
    cand = (least > threshold).astype(np.float32)
    mask = np.zeros(cur.shape, np.uint8)
    if not cand.any():
        return mask
    box = (2 * ring + 1, 2 * ring + 1)
    others = 1.0 - cand
    mismatch = cv2.blur(cv2.max(dp, dn) * others, box) / np.maximum(cv2.blur(others, box), 1e-3)
    where = np.flatnonzero(cand)
    c, p, n = (a.reshape(-1)[where] for a in (cur, prev, nxt))
    keep = ((c - p) * (c - n) > 0) & (np.abs(p - n) < 0.5 * threshold + 3.0 * sigma)
    keep &= (valid.reshape(-1)[where] > 0) & (mismatch.reshape(-1)[where] < 3.0 * sigma + 0.015)
    mask.reshape(-1)[where[keep]] = 1
    if not keep.any():
        return mask
    n_labels, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    wide = (stats[:, cv2.CC_STAT_WIDTH] > max_width) & (stats[:, cv2.CC_STAT_HEIGHT] > max_width)
    wide[0] = True  # the background label
    if wide[1:].any():
        mask = (~wide[labels]).astype(np.uint8)
    # a speck's rim is softer than its core: take one more pixel around every detection
    return cv2.dilate(mask, np.ones((3, 3), np.uint8))


def match_weight(cur: np.ndarray, other: np.ndarray, sigma: float, radius: int = 2) -> np.ndarray:
    """(H, W) weight of a warped neighbour's luma ``other`` against ``cur``: 1 where their local mean
    absolute difference (a (2r+1)^2 box) is within what noise of ``sigma`` explains (1.5 sigma),
    falling linearly to 0 at twice that."""
    import cv2

    diff = cv2.blur(np.abs(cur - other), (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REPLICATE)
    lim = max(sigma, 0.5 / 255.0) * 1.5
    return np.clip(2.0 - diff / lim, 0.0, 1.0)


def temporal_average(cur: np.ndarray, others: list[np.ndarray], weights: list[np.ndarray]) -> np.ndarray:
    """``(cur + sum w_i * other_i) / (1 + sum w_i)`` per pixel; ``weights`` are (H, W) float32
    (``cv2.blendLinear`` takes one weight plane for all channels: one pass per neighbour)."""
    import cv2

    if not others:
        return cur
    acc = np.ones(cur.shape[:2], np.float32)
    out = cur
    for o, w in zip(others, weights):
        out = cv2.blendLinear(out, o, acc, w)
        acc = acc + w
    return out.reshape(cur.shape)
