"""An edge-aware quadratic solver: values given at a few pixels, spread along luminance.

The energy is the one of Levin, Lischinski & Weiss 2004 ("Colorization using optimization") in its
graph-Laplacian form: neighbouring pixels ``r, s`` (4-neighbours) of similar lightness should get
similar values, with the affinity ``w_rs = exp(-(L_r - L_s)^2 / (2 sigma_rs^2))``, plus a term per
pixel that pulls it to its given value (weight ``lam`` where the mask is 1: a near-hard constraint)
and a small term pulling every pixel to 0 (weight ``mu``):

    E(u) = sum_{r~s} w_rs (u_r - u_s)^2 + sum_r lam m_r (u_r - v_r)^2 + sum_r mu u_r^2

Its minimiser solves the sparse symmetric positive-definite system ``(D - W + diag(lam m + mu)) u =
lam m v``, solved here matrix-free by conjugate gradients with a Jacobi (diagonal) preconditioner,
all channels at once, starting from the solution at half size (recursively) upsampled. ``sigma``
is fixed (L* units): Levin et al.'s sigma from the local variance of L lets colour through a
sharp step, whose 3x3 windows have a large variance.

Read as a random walk: ``u_r`` is the expected value the walk from ``r`` collects from the given
pixels it reaches before it is stopped (probability ``mu`` per step, relative to the affinities), so
solving the mask itself gives how strongly each pixel is tied to a given pixel.
"""

from __future__ import annotations

import numpy as np
import torch


def affinities(L: np.ndarray, sigma: float, guide: np.ndarray | None = None,
               guide_sigma: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``L`` ``(1, h, w)`` float32 L* -> the affinities between horizontal neighbours ``(1, h, w - 1)``
    and vertical neighbours ``(1, h - 1, w)``, in [0, 1] (below 1e-8 set to 0, no denormals). With
    ``guide`` ``(C, h, w)`` and ``guide_sigma`` > 0, its differences lower the affinity too:
    ``exp(-dL^2 / (2 sigma^2) - |d guide|^2 / (2 guide_sigma^2))``."""
    v = np.float32(sigma**2)
    dx = L[..., :, 1:] - L[..., :, :-1]
    dy = L[..., 1:, :] - L[..., :-1, :]
    ex, ey = dx * dx / (2 * v), dy * dy / (2 * v)
    if guide is not None and guide_sigma > 0:
        gx = guide[..., :, 1:] - guide[..., :, :-1]
        gy = guide[..., 1:, :] - guide[..., :-1, :]
        ex = ex + (gx * gx).sum(0, keepdims=True) / (2 * guide_sigma**2)
        ey = ey + (gy * gy).sum(0, keepdims=True) / (2 * guide_sigma**2)
    wx = np.exp(-ex).astype(np.float32)
    wy = np.exp(-ey).astype(np.float32)
    wx[wx < 1e-8] = 0
    wy[wy < 1e-8] = 0
    return wx, wy


def _laplacian_apply(x: np.ndarray, wx: np.ndarray, wy: np.ndarray, diag: np.ndarray,
                     out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """``out = (D - W + diag(c)) x`` for ``x`` ``(C, h, w)``; ``diag`` holds ``D + c``; ``tmp`` is
    scratch space of ``x``'s shape."""
    np.multiply(diag, x, out=out)
    t = np.multiply(wx, x[..., :, 1:], out=tmp[..., :, 1:])
    out[..., :, :-1] -= t
    t = np.multiply(wx, x[..., :, :-1], out=tmp[..., :, 1:])
    out[..., :, 1:] -= t
    t = np.multiply(wy, x[..., 1:, :], out=tmp[..., 1:, :])
    out[..., :-1, :] -= t
    t = np.multiply(wy, x[..., :-1, :], out=tmp[..., 1:, :])
    out[..., 1:, :] -= t
    return out


def _degree(wx: np.ndarray, wy: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    deg = np.zeros((1, *shape), dtype=np.float32)
    deg[..., :, :-1] += wx
    deg[..., :, 1:] += wx
    deg[..., :-1, :] += wy
    deg[..., 1:, :] += wy
    return deg


def _shrink(x: np.ndarray) -> np.ndarray:
    """``(C, h, w)`` -> ``(C, ceil(h / 2), ceil(w / 2))``, the mean of each 2x2 block."""
    c, h, w = x.shape
    if h % 2 or w % 2:
        x = np.pad(x, ((0, 0), (0, h % 2), (0, w % 2)), mode="edge")
    return x.reshape(c, x.shape[1] // 2, 2, x.shape[2] // 2, 2).mean((2, 4), dtype=np.float32)


def _grow(x: np.ndarray, L_coarse: np.ndarray, L: np.ndarray, sigma: float) -> np.ndarray:
    """``x`` ``(C, h', w')`` at half size -> ``(C, h, w)``: bilinear weights (half-pixel centres) times
    the affinity of each fine pixel's L to the coarse pixel's, so a start value is not carried
    across an edge into a region that no given pixel reaches (the solve would leave it there)."""
    h, w = L.shape[-2:]
    hc, wc = x.shape[-2:]
    ty = np.clip((np.arange(h) + 0.5) / 2 - 0.5, 0, hc - 1)
    tx = np.clip((np.arange(w) + 0.5) / 2 - 0.5, 0, wc - 1)
    y0, x0 = np.floor(ty).astype(int), np.floor(tx).astype(int)
    y1, x1 = np.minimum(y0 + 1, hc - 1), np.minimum(x0 + 1, wc - 1)
    fy, fx = (ty - y0)[:, None], (tx - x0)[None, :]
    num = np.zeros((x.shape[0], h, w), np.float32)
    den = np.full((1, h, w), 1e-20, np.float32)
    for yi, xi, bw in ((y0, x0, (1 - fy) * (1 - fx)), (y0, x1, (1 - fy) * fx), (y1, x0, fy * (1 - fx)),
                       (y1, x1, fy * fx)):
        d = L - L_coarse[:, yi][:, :, xi]
        wgt = (bw * np.exp(-d * d / (2 * sigma**2))).astype(np.float32)
        num += wgt * x[:, yi][:, :, xi]
        den += wgt
    return num / den


def solve(L: torch.Tensor, values: torch.Tensor, weight: torch.Tensor, mu: float, sigma: float = 4.0,
          lam: float = 1000.0, tol: float = 1e-4, max_iter: int = 400,
          min_size: int = 24, guide: torch.Tensor | None = None, guide_sigma: float = 0.0) -> torch.Tensor:
    """Minimise the energy above. ``L`` ``(1, h, w)`` L* in [0, 100]; ``values`` ``(C, h, w)`` the given
    values (read where ``weight`` > 0); ``weight`` ``(1, h, w)`` in [0, 1], the mask of given pixels;
    ``mu`` the pull to 0 per pixel (relative to an affinity of 1; > 0, or 0 when some pixel is given in
    every connected region). Returns ``u`` ``(C, h, w)`` float32. Deterministic and single-threaded
    (numpy): a fixed sequence of operations, stopped when the preconditioned residual of every
    channel fell below ``tol`` times its start, or after ``max_iter`` iterations per level."""
    as_np = lambda t: np.ascontiguousarray(t.detach().cpu().numpy(), dtype=np.float32)  # noqa: E731
    g = as_np(guide) if guide is not None and guide_sigma > 0 else None
    u, _ = solve_np(as_np(L), as_np(values), as_np(weight), mu, sigma, lam, tol, max_iter, min_size, g,
                    guide_sigma)
    return torch.from_numpy(u)


def solve_np(L: np.ndarray, values: np.ndarray, weight: np.ndarray, mu: float, sigma: float, lam: float,
             tol: float, max_iter: int, min_size: int, guide: np.ndarray | None = None,
             guide_sigma: float = 0.0) -> tuple[np.ndarray, list[int]]:
    """:func:`solve` on float32 arrays -> (u, the iterations of each level, coarsest first)."""
    h, w = L.shape[-2:]
    x0, iters = None, []
    if min(h, w) >= 2 * min_size:  # coarse-to-fine start: the same problem at half size
        m_small = _shrink(weight)
        v_small = _shrink(values * weight) / np.maximum(m_small, 1e-6)
        # a pixel at half size stands for four: the same reach needs four times the pull
        L_small = _shrink(L)
        coarse, iters = solve_np(L_small, v_small, m_small, 4 * mu, sigma, lam, tol, max_iter,
                                 min_size, None if guide is None else _shrink(guide), guide_sigma)
        x0 = _grow(coarse, L_small, L, sigma)
    wx, wy = affinities(L, sigma, guide, guide_sigma)
    c = (lam * weight + mu).astype(np.float32)
    diag = _degree(wx, wy, (h, w)) + c
    b = (lam * weight * values).astype(np.float32)
    u, n = conjugate_gradient(b, wx, wy, diag, x0, tol, max_iter)
    return u, iters + [n]


def _dots(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-channel inner products in float64, summed in a fixed order (single-threaded numpy)."""
    return np.einsum("chw,chw->c", a, b, dtype=np.float64)


def conjugate_gradient(b: np.ndarray, wx: np.ndarray, wy: np.ndarray, diag: np.ndarray,
                       x0: np.ndarray | None, tol: float, max_iter: int) -> tuple[np.ndarray, int]:
    """Jacobi-preconditioned conjugate gradients on ``(D - W + diag(c)) x = b``, one independent
    system per channel of ``b`` ``(C, h, w)`` float32 with the same matrix -> (x, iterations)."""
    inv = (1.0 / diag).astype(np.float32)
    x = np.zeros_like(b) if x0 is None else x0.astype(np.float32, copy=True)
    tmp, q = np.empty_like(b), np.empty_like(b)
    r = b - _laplacian_apply(x, wx, wy, diag, q, tmp)
    z = r * inv
    p = z.copy()
    rz = _dots(r, z)
    start = np.maximum(_dots(b * inv, b), 1e-30)
    done = 0
    for done in range(max_iter):
        if np.all(rz <= tol**2 * start):
            break
        _laplacian_apply(p, wx, wy, diag, q, tmp)
        pq = _dots(p, q)
        alpha = np.where(pq > 0, rz / np.maximum(pq, 1e-300), 0.0).astype(np.float32)[:, None, None]
        x += alpha * p
        r -= alpha * q
        np.multiply(r, inv, out=z)
        rz_new = _dots(r, z)
        beta = np.where(rz > 0, rz_new / np.maximum(rz, 1e-300), 0.0).astype(np.float32)[:, None, None]
        p *= beta
        p += z
        rz = rz_new
    return x, done
