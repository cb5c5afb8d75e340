"""Backward warping, flow resizing and the occlusion mask of Lai et al. (ECCV 2018).

Conventions used across ``vidcolor.flow``:

* A flow is a float tensor ``(N, 2, H, W)`` in pixels: ``flow[:, 0]`` is dx, ``flow[:, 1]`` is dy.
* ``warp(b, flow)`` samples ``b`` at ``p + flow(p)``, so a flow "from a to b" (what every
  ``FlowEstimator(a, b)`` returns) satisfies ``warp(b, flow) ~= a`` wherever ``p`` is visible in
  both frames. This is the convention of FlowNet2's ``Resample2d`` used by Lai et al., of RAFT and
  of OpenCV's ``calc(I0, I1)``.
* Pixel centres sit at integer coordinates ``0 .. W-1`` (``grid_sample(align_corners=True)``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["flow_gradients", "occlusion_mask", "resize_flow", "warp"]


def _check_flow(flow: torch.Tensor, name: str = "flow") -> None:
    if not isinstance(flow, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(flow).__name__}")
    if flow.dim() != 4 or flow.shape[1] != 2:
        raise ValueError(f"{name} must have shape (N, 2, H, W), got {tuple(flow.shape)}")
    if not flow.is_floating_point():
        raise TypeError(f"{name} must be a floating point tensor, got {flow.dtype}")


_GRID_CACHE: dict[tuple, torch.Tensor] = {}


def _base_grid(height: int, width: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Normalised sampling grid of the identity warp, ``(1, H, W, 2)`` (cached: the stabilizer warps
    every frame at the same size)."""
    key = (height, width, str(device), dtype)
    grid = _GRID_CACHE.get(key)
    if grid is None:
        # align_corners=True: -1 and +1 are the centres of the first and last pixels.
        xs = torch.linspace(-1.0, 1.0, width, device=device, dtype=dtype) if width > 1 else torch.zeros(1, device=device, dtype=dtype)
        ys = torch.linspace(-1.0, 1.0, height, device=device, dtype=dtype) if height > 1 else torch.zeros(1, device=device, dtype=dtype)
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).unsqueeze(0)
        if len(_GRID_CACHE) > 16:
            _GRID_CACHE.clear()
        _GRID_CACHE[key] = grid
    return grid


def warp(x: torch.Tensor, flow: torch.Tensor, *, return_mask: bool = False, mode: str = "bilinear",
         padding_mode: str = "border") -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Backward-warp ``x`` with ``flow``: ``out(p) = x(p + flow(p))``, bilinear.

    Args:
        x: ``(N, C, H, W)`` float tensor (any range: images, chroma, flows...).
        flow: ``(N, 2, H, W)`` float tensor in pixels (``[:, 0]`` = dx, ``[:, 1]`` = dy); ``N`` may
            be 1 to warp a batch with one flow.
        return_mask: also return the validity mask ``(N, 1, H, W)`` float in {0, 1}: 1 where the
            sample point lies inside the frame (``0 <= x <= W-1`` and ``0 <= y <= H-1``).
        mode: ``"bilinear"`` or ``"nearest"`` (``grid_sample`` modes).
        padding_mode: what out-of-frame samples read: ``"border"`` (replicate the edge, as
            FlowNet2's ``Resample2d`` that Lai et al. use), ``"zeros"`` or ``"reflection"``.

    Returns:
        The warped ``(N, C, H, W)`` tensor (dtype of ``x``), and the mask if ``return_mask``.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"x must have shape (N, C, H, W), got {tuple(x.shape)}")
    _check_flow(flow)
    n, _, h, w = x.shape
    if flow.shape[-2:] != (h, w):
        raise ValueError(f"flow size {tuple(flow.shape[-2:])} does not match x size {(h, w)}")
    if flow.shape[0] not in (1, n):
        raise ValueError(f"flow batch {flow.shape[0]} does not match x batch {n} (expected {n} or 1)")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating point tensor, got {x.dtype}")
    flow = flow.to(dtype=x.dtype)
    # Pixels -> normalised units: one fused multiply-add on top of the cached identity grid.
    scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], device=x.device, dtype=x.dtype)
    grid = torch.addcmul(_base_grid(h, w, x.device, x.dtype), flow.permute(0, 2, 3, 1), scale)
    if grid.shape[0] != n:
        grid = grid.expand(n, -1, -1, -1)
    out = F.grid_sample(x, grid, mode=mode, padding_mode=padding_mode, align_corners=True)
    if not return_mask:
        return out
    inside = (grid.abs() <= 1.0 + 1e-6).all(dim=-1).unsqueeze(1)
    return out, inside.to(x.dtype)


def resize_flow(flow: torch.Tensor, size: tuple[int, int], mode: str = "bilinear") -> torch.Tensor:
    """Resize a flow ``(N, 2, h, w)`` to ``size = (H, W)`` and scale its vectors by ``W/w`` and ``H/h``,
    so that it stays in pixels of the new size. Half-pixel-centre resampling
    (``align_corners=False``), the same geometry as ``cv2.resize``."""
    _check_flow(flow)
    h, w = flow.shape[-2:]
    height, width = int(size[0]), int(size[1])
    if (h, w) == (height, width):
        return flow
    out = F.interpolate(flow, size=(height, width), mode=mode, align_corners=False)
    out[:, 0].mul_(width / w)
    out[:, 1].mul_(height / h)
    return out


def flow_gradients(flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared spatial gradients of each flow component, as in Lai et al.'s ``compute_flow_gradients``:
    forward differences ``f(x) - f(x+1)`` (zero in the last column / row).

    Returns ``(|grad dx|^2, |grad dy|^2)``, each ``(N, 1, H, W)``.
    """
    _check_flow(flow)
    du = torch.zeros_like(flow)
    dv = torch.zeros_like(flow)
    du[..., :, :-1] = flow[..., :, :-1] - flow[..., :, 1:]
    dv[..., :-1, :] = flow[..., :-1, :] - flow[..., 1:, :]
    mag = du**2 + dv**2
    return mag[:, :1], mag[:, 1:]


def occlusion_mask(forward: torch.Tensor, backward: torch.Tensor) -> torch.Tensor:
    """Reliable-pixel mask ``(N, 1, H, W)`` float in {0, 1} (1 = reliable) for frame ``a``.

    ``forward`` is the flow from ``a`` to ``b`` (``warp(b, forward) ~= a``), ``backward`` the flow
    from ``b`` to ``a``; both ``(N, 2, H, W)`` in pixels. A pixel of ``a`` is unreliable when
    (Lai et al., "Learning Blind Video Temporal Consistency", ECCV 2018, §4 and their
    ``utils.detect_occlusion``, following Ruder et al. 2016):

    * the forward-backward check fails (occlusion):
      ``|F + B~|^2 > 0.01 (|F|^2 + |B~|^2) + 0.5`` with ``B~ = warp(backward, forward)``, or
    * it lies on a motion boundary: ``|grad F_x|^2 + |grad F_y|^2 > 0.01 |F|^2 + 0.002``.

    Lai et al. call ``detect_occlusion(bw_flow, fw_flow)`` for the mask of frame t-1, so the flow
    their code names ``B`` inside the function is the flow *of the masked frame*: our ``forward``.
    Thresholds are in pixels of the flow's resolution.
    """
    _check_flow(forward, "forward")
    _check_flow(backward, "backward")
    if forward.shape != backward.shape:
        raise ValueError(f"forward and backward flows must have the same shape, got "
                         f"{tuple(forward.shape)} and {tuple(backward.shape)}")
    backward_w = warp(backward, forward)
    fb = ((forward + backward_w) ** 2).sum(1, keepdim=True)
    mag_f = (forward**2).sum(1, keepdim=True)
    mag_b = (backward_w**2).sum(1, keepdim=True)
    occluded = fb > 0.01 * (mag_f + mag_b) + 0.5
    gx, gy = flow_gradients(forward)
    boundary = (gx + gy) > 0.01 * mag_f + 0.002
    return (~(occluded | boundary)).to(forward.dtype)
