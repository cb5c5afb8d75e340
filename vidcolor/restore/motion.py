"""The motion-compensated window the restoration filters share: per frame, measured once.

Each frame ``s`` is *measured* when it first reaches the window (from a chunk or from the frames the
run decodes ahead of it, ``Chunk.ahead``): its luma at a working size (short side ``work_size``,
area filter), the DIS flow from ``s`` to ``s - 1`` (OpenCV, ultrafast preset), and from that

- whether ``s`` starts a shot: fewer than ``1 - scene_cut`` of its working pixels are matched by
  the flow-warped previous frame within ``photo_tol`` once a global brightness change is removed
  (the stabilizer's test, ``vidcolor/stages/stabilize.py``, in numpy for speed);
- its *relative brightness* ``c_s = log(sum y_s / sum warp(y_{s-1}))`` over the matched pixels: the
  exposure change from the previous frame with the motion taken out, and ``level_s``, their sum
  since the shot started (a log brightness that only its differences within the shot mean).

The filters then ask for a frame's neighbours in its shot (:meth:`MotionWindow.shot_span`), the
flows between the frame and its neighbours, and the brightness levels around it. Everything kept
is in ``state_dict()``: a resumed run continues exactly.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

_EPS = 1e-3


@dataclass
class Measure:
    """What the window knows of frame ``index``: ``small`` the working-size luma (float32 in [0, 1]),
    ``flow_back`` the flow from this frame to the previous one at the working size (None at a shot
    start), ``cut`` True when the frame starts a shot, ``level`` its log brightness within the shot,
    ``matched`` the share of its working pixels the previous frame matched, ``regions`` the level of
    each cell of a G x G grid (``MotionWindow.regions`` > 1)."""

    index: int
    small: np.ndarray
    flow_back: np.ndarray | None
    cut: bool
    level: float
    matched: float
    regions: np.ndarray | None = None  # (G, G) log brightness of each region within the shot


def luma_of(frame: np.ndarray) -> np.ndarray:
    """(H, W, C) float32 in [0, 1] (C = 3 RGB or 1 luma) -> (H, W) float32 Rec.709 luma."""
    if frame.shape[2] == 1:
        return frame[..., 0]
    import cv2

    return cv2.transform(frame, np.array([[0.2126, 0.7152, 0.0722]], np.float32))


def upsample_flow(flow: np.ndarray, height: int, width: int) -> np.ndarray:
    """Working-size flow (h, w, 2) -> pixel map (H, W, 2) for ``cv2.remap`` at full size: the
    vectors scaled, the flow resized, the pixel grid added."""
    import cv2

    h, w = flow.shape[:2]
    if (h, w) != (height, width):
        flow = cv2.resize(flow * np.array([width / w, height / h], np.float32), (width, height),
                          interpolation=cv2.INTER_LINEAR)
    return cv2.add(flow, _grid(height, width))


def inside_mask(flow: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W) float32, 1 where the working-size ``flow`` (h, w, 2) points inside the frame (decided at
    the working size, where it is cheap, and resized)."""
    import cv2

    h, w = flow.shape[:2]
    pos = flow + _grid(h, w)
    inside = ((pos[..., 0] >= -0.5) & (pos[..., 0] <= w - 0.5) & (pos[..., 1] >= -0.5)
              & (pos[..., 1] <= h - 0.5)).astype(np.float32)
    if (h, w) == (height, width):
        return inside
    return cv2.resize(inside, (width, height), interpolation=cv2.INTER_NEAREST)


_GRIDS: dict[tuple[int, int], np.ndarray] = {}


def _grid(height: int, width: int) -> np.ndarray:
    key = (height, width)
    if key not in _GRIDS:
        if len(_GRIDS) >= 4:  # the working and the full size of a film or two
            _GRIDS.clear()
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        _GRIDS[key] = np.dstack([xs, ys])
    return _GRIDS[key]


def warp_map(image: np.ndarray, pixel_map: np.ndarray) -> np.ndarray:
    """``image`` (H, W[, C]) sampled at ``pixel_map`` (bilinear, border replicated)."""
    import cv2

    return cv2.remap(image, pixel_map, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class MotionWindow:
    """Frames measured in order (:meth:`measure`), kept from ``keep`` frames before the frame being
    restored to the newest measured one."""

    def __init__(self, work_size: int = 240, scene_cut: float = 0.35, photo_tol: float = 0.08,
                 keep: int = 4, regions: int = 1) -> None:
        self.work_size, self.scene_cut, self.photo_tol, self.keep = int(work_size), scene_cut, photo_tol, int(keep)
        self.regions = int(regions)
        self.frames: OrderedDict[int, Measure] = OrderedDict()
        self._dis = None

    # -- measuring -------------------------------------------------------------------------------
    @property
    def front(self) -> int | None:
        """Index of the newest measured frame."""
        return next(reversed(self.frames)) if self.frames else None

    def small_of(self, frame: np.ndarray) -> np.ndarray:
        """(H, W, C) uint8 or float32 frame -> working-size luma (h, w) float32 in [0, 1]: shrunk
        first (area filter), the luma taken at the small size."""
        import cv2

        h, w = frame.shape[:2]
        scale = min(1.0, self.work_size / min(h, w))
        if scale < 1.0:
            size = (max(8, round(w * scale)), max(8, round(h * scale)))
            frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
            if frame.ndim == 2:
                frame = frame[..., None]
        small = frame.astype(np.float32) * np.float32(1 / 255) if frame.dtype == np.uint8 else frame
        return np.ascontiguousarray(luma_of(np.ascontiguousarray(small, np.float32)))

    def flow(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """DIS flow (h, w, 2) with ``a(p) ~= b(p + flow(p))`` between working-size luma frames."""
        import cv2

        if self._dis is None:
            self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        u8 = [np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8) for x in (a, b)]
        return self._dis.calc(u8[0], u8[1], None)

    def measure(self, index: int, frame: np.ndarray) -> Measure:
        """Measure frame ``index`` from the frame (H, W, C) (uint8 or float32 in [0, 1]); frames must
        come in order (an index that does not follow the newest one starts a shot)."""
        small = self.small_of(frame)
        prev = self.frames.get(index - 1)
        if prev is None or prev.small.shape != small.shape:
            m = Measure(index, small, None, True, 0.0, 0.0, self._zeros())
        else:
            flow = self.flow(small, prev.small)
            back = warp_map(prev.small, flow + _grid(*small.shape))
            inside = inside_mask(flow, *small.shape)
            change, matched, good = brightness_change(small, back, inside, self.photo_tol)
            cut = matched < 1.0 - self.scene_cut
            regions = self._zeros()
            if regions is not None and not cut and prev.regions is not None:
                regions = prev.regions + region_changes(small, back, good, self.regions, change)
            m = Measure(index, small, None if cut else flow, cut, 0.0 if cut else prev.level + change, matched,
                        regions)
        self.frames[index] = m
        return m

    def _zeros(self) -> np.ndarray | None:
        return np.zeros((self.regions, self.regions), np.float64) if self.regions > 1 else None

    def forget_before(self, index: int) -> None:
        """Drop frames older than ``index - keep``."""
        while self.frames and next(iter(self.frames)) < index - self.keep:
            self.frames.popitem(last=False)

    # -- questions of the filters ----------------------------------------------------------------
    def same_shot(self, a: int, b: int) -> bool:
        """Whether frames ``a`` and ``b`` (both measured) are in one shot."""
        lo, hi = min(a, b), max(a, b)
        return all(not self.frames[i].cut for i in range(lo + 1, hi + 1))

    def shot_span(self, t: int, radius: int) -> list[int]:
        """The measured frames within ``radius`` of ``t`` in ``t``'s shot, in order."""
        out = [t]
        for step in (-1, 1):
            i = t
            while abs(i + step - t) <= radius and (i + step) in self.frames:
                if self.frames[max(i, i + step)].cut:
                    break
                i += step
                out.append(i)
        return sorted(out)

    def reference_level(self, t: int, radius: int) -> float:
        """The brightness frame ``t`` should have: the least-squares line through the levels of the
        frames of its shot within ``radius`` (a fade, linear in log brightness, is kept), at ``t``.

        Where the window is whole the line's value at ``t`` is the mean level, whatever its slope;
        near the ends of a shot the window is one-sided and an unbounded slope would follow the last
        frames' pumping, so the slope is shrunk (ridge, by the spread of a whole window): the value
        there lies between the one-sided line and the one-sided mean."""
        span = self.shot_span(t, radius)
        return float(_line_at_zero(span, t, radius, np.array([self.frames[i].level for i in span])))

    def reference_regions(self, t: int, radius: int) -> np.ndarray | None:
        """:meth:`reference_level` for each cell of the grid, (G, G), or None without regions."""
        if self.frames[t].regions is None:
            return None
        span = self.shot_span(t, radius)
        return _line_at_zero(span, t, radius, np.stack([self.frames[i].regions for i in span]))

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        import torch

        out: dict[str, Any] = {}
        for i, m in self.frames.items():
            out[f"{i}.small"] = torch.from_numpy(m.small.copy())
            if m.flow_back is not None:
                out[f"{i}.flow"] = torch.from_numpy(m.flow_back.copy())
            out[f"{i}.meta"] = torch.tensor([float(m.cut), m.level, m.matched], dtype=torch.float64)
            if m.regions is not None:
                out[f"{i}.regions"] = torch.from_numpy(m.regions.copy())
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.frames.clear()
        for i in sorted({int(k.split(".")[0]) for k in state}):
            cut, level, matched = (float(v) for v in state[f"{i}.meta"].tolist())
            flow, regions = state.get(f"{i}.flow"), state.get(f"{i}.regions")
            self.frames[i] = Measure(i, state[f"{i}.small"].numpy().copy(),
                                     None if flow is None else flow.numpy().copy(), bool(cut), level, matched,
                                     None if regions is None else regions.numpy().copy())

    def reset(self) -> None:
        self.frames.clear()


def brightness_change(cur: np.ndarray, back: np.ndarray, inside: np.ndarray,
                      tol: float) -> tuple[float, float, np.ndarray]:
    """Log brightness of ``cur`` over ``back`` (the previous frame warped onto it), the share of
    pixels that match once that change is removed, and those pixels (float32 mask): two rounds, the
    second over the pixels the first round matched (so moving objects and occlusions do not bias the
    estimate)."""
    weight = inside
    ratio = 1.0
    matched = 0.0
    for _ in range(2):
        den = float((back * weight).sum())
        num = float((cur * weight).sum())
        if den <= _EPS or num <= _EPS:
            break
        ratio = num / den
        good = (np.abs(cur - ratio * back) < tol) & (inside > 0)
        matched = float(good.mean())
        if not good.any():
            break
        weight = good.astype(np.float32)
    return math.log(max(ratio, _EPS)), matched, weight


def region_changes(cur: np.ndarray, back: np.ndarray, good: np.ndarray, grid: int, change: float) -> np.ndarray:
    """(grid, grid) log brightness change of each cell of ``cur`` over ``back`` on the matched pixels
    ``good``; a cell with under 5 % of its pixels matched takes the frame's ``change``."""
    import cv2

    size = (grid, grid)
    num = cv2.resize(cur * good, size, interpolation=cv2.INTER_AREA).astype(np.float64)
    den = cv2.resize(back * good, size, interpolation=cv2.INTER_AREA).astype(np.float64)
    share = cv2.resize(good, size, interpolation=cv2.INTER_AREA)
    ok = (share >= 0.05) & (num > _EPS) & (den > _EPS)
    out = np.full(size, change, np.float64)
    out[ok] = np.log(num[ok] / den[ok])
    return out


def _line_at_zero(span: list[int], t: int, radius: int, y: np.ndarray) -> np.ndarray:
    """The ridge-shrunk least-squares line through ``y`` (one value, or one array, per frame of
    ``span``) at frame ``t`` (see :meth:`MotionWindow.reference_level`)."""
    if len(span) < 2:
        return y[span.index(t)]
    x = np.array(span, np.float64) - t
    xc = x - x.mean()
    ridge = radius * (radius + 1) * (2 * radius + 1) / 3.0 if x.mean() != 0 else 0.0
    ym = y.mean(axis=0)
    slope = np.tensordot(xc, y - ym, axes=(0, 0)) / max(float(np.dot(xc, xc)) + ridge, 1e-12)
    return ym - slope * x.mean()
