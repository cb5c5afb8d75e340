"""A seeded synthetic film-degradation model: flicker, grain, dust specks, line scratches, blur, JPEG.

    from vidcolor.degrade import Degradation, degrade, defect_mask
    bad, record = degrade(frames, Degradation(), seed=0)       # frames: (N, H, W, 3) uint8 RGB
    mask = defect_mask(record, 5, h, w)                         # pixels specks/scratches touched in frame 5

Each frame is degraded on its own, in float32 on [0, 1], in this order:

1. ``blur``: Gaussian blur of sigma ``blur`` px (off at 0).
2. ``flicker``: the whole frame times a gain drawn uniformly in ``[1 - flicker, 1 + flicker]``.
3. ``grain``: i.i.d. Gaussian noise of sigma ``grain`` per pixel and channel, fresh every frame.
4. ``specks`` dust specks: irregular blobs of radius 1-4 px centred uniformly in the frame, opaque
   grey, dark (0.02-0.2) or bright (0.85-1.0), each in one frame only; then ``scratches`` vertical
   line scratches: 1-2 px wide, spanning 40-100 % of the height, their x wandering by at most 1 px,
   added as a constant -0.4..-0.2 or +0.2..+0.4, at a new random x every frame.
5. Clipping to [0, 1], rounding to uint8, then ``jpeg`` (JPEG at that quality, OpenCV; off at 0).

Frame ``start + i`` draws all its randomness from ``numpy.random.default_rng([seed, start + i])``,
so the result depends only on the seed and the frame's index, never on how frames are batched.

The record lists every speck and scratch with the pixels it covers: ``bbox = [x0, y0, w, h]`` and
``rows``, one integer per bbox row whose bit ``i`` is set when pixel ``(x0 + i, y0 + row)`` belongs
to it (``defect_pixels`` rebuilds that set exactly; a later speck may paint over an earlier one, the
record keeps each speck's own pixels). All values are JSON-serialisable.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np

__all__ = ["Degradation", "defect_mask", "defect_pixels", "degrade", "degrade_frame"]

SPECK_DARK = (0.02, 0.2)
SPECK_BRIGHT = (0.85, 1.0)
SPECK_RADIUS = (1.0, 4.0)
SCRATCH_SPAN = (0.4, 1.0)
SCRATCH_DELTA = (0.2, 0.4)


@dataclass(frozen=True)
class Degradation:
    """What ``degrade`` does to each frame (see the module docstring for the order)."""

    flicker: float = 0.10      # brightness gain uniform in [1 - flicker, 1 + flicker]
    grain: float = 8 / 255     # Gaussian sigma per pixel and channel, on [0, 1]
    specks: int = 20           # dust specks per frame
    scratches: int = 2         # line scratches per frame
    blur: float = 0.0          # Gaussian sigma in px (0: off)
    jpeg: int = 0              # JPEG quality 1-100 (0: off)

    def __post_init__(self) -> None:
        if not 0 <= self.flicker < 1:
            raise ValueError(f"flicker must be in [0, 1), got {self.flicker}")
        if not 0 <= self.grain <= 1:
            raise ValueError(f"grain must be in [0, 1], got {self.grain}")
        if self.specks < 0 or self.scratches < 0:
            raise ValueError(f"specks and scratches must be >= 0, got {self.specks} and {self.scratches}")
        if self.blur < 0:
            raise ValueError(f"blur must be >= 0, got {self.blur}")
        if not (self.jpeg == 0 or 1 <= self.jpeg <= 100):
            raise ValueError(f"jpeg must be 0 (off) or a quality in 1-100, got {self.jpeg}")

    def to_json(self) -> dict:
        return asdict(self)


def _rows_of(mask: np.ndarray) -> list[int]:
    """(h, w) bool -> one int per row, bit i = column i."""
    weights = 1 << np.arange(mask.shape[1], dtype=object)
    return [int((weights * row).sum()) for row in mask.astype(object)]


def _clip_box(mask: np.ndarray, x0: int, y0: int, h: int, w: int) -> tuple[np.ndarray, int, int]:
    """Cut a shape placed with its top-left at (x0, y0) to the frame; returns it and its new corner."""
    mh, mw = mask.shape
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x0 + mw, w), min(y0 + mh, h)
    return mask[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0], cx0, cy0


def _entry(mask: np.ndarray, x0: int, y0: int) -> dict:
    """bbox and rows of a shape, its box tightened to the pixels it covers."""
    ys, xs = np.nonzero(mask)
    if len(ys):
        mask = mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        x0, y0 = x0 + xs.min(), y0 + ys.min()
    return {"bbox": [int(x0), int(y0), int(mask.shape[1]), int(mask.shape[0])], "rows": _rows_of(mask)}


def defect_pixels(entry: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(ys, xs)`` of the pixels of one recorded speck or scratch, rebuilt from its bbox and rows."""
    x0, y0, w, h = entry["bbox"]
    bits = np.array([[(r >> i) & 1 for i in range(w)] for r in entry["rows"]], dtype=bool).reshape(h, w)
    ys, xs = np.nonzero(bits)
    return ys + y0, xs + x0


def defect_mask(record: dict, frame: int, height: int, width: int, kinds: tuple[str, ...] = ("specks", "scratches")
                ) -> np.ndarray:
    """Boolean (H, W) mask of the pixels the recorded specks and/or scratches of ``frame`` touched."""
    mask = np.zeros((height, width), dtype=bool)
    for kind in kinds:
        for e in record[kind]:
            if e["frame"] == frame:
                mask[defect_pixels(e)] = True
    return mask


def _blob(rng: np.random.Generator, radius: float) -> np.ndarray:
    """An irregular filled blob around the centre of a (2R+1)^2 box: the radius varies with the angle."""
    a1, a2 = rng.uniform(0, 1, 2)
    p1, p2 = rng.uniform(0, 2 * math.pi, 2)
    big = int(math.ceil(radius * 1.5))
    yy, xx = np.mgrid[-big:big + 1, -big:big + 1]
    theta = np.arctan2(yy, xx)
    edge = radius * (1 + 0.3 * a1 * np.cos(theta - p1) + 0.2 * a2 * np.cos(2 * theta - p2))
    blob = np.hypot(yy, xx) <= edge
    blob[big, big] = True
    return blob


def _add_specks(img: np.ndarray, rng: np.random.Generator, count: int, frame: int) -> list[dict]:
    h, w = img.shape[:2]
    out = []
    for _ in range(count):
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
        radius = float(rng.uniform(*SPECK_RADIUS))
        dark = bool(rng.random() < 0.5)
        value = float(rng.uniform(*(SPECK_DARK if dark else SPECK_BRIGHT)))
        blob = _blob(rng, radius)
        big = blob.shape[0] // 2
        blob, x0, y0 = _clip_box(blob, cx - big, cy - big, h, w)
        img[y0:y0 + blob.shape[0], x0:x0 + blob.shape[1]][blob] = value
        out.append({"frame": frame, "x": cx, "y": cy, "radius": round(radius, 3),
                    "kind": "dark" if dark else "bright", "value": round(value, 4), **_entry(blob, x0, y0)})
    return out


def _add_scratches(img: np.ndarray, rng: np.random.Generator, count: int, frame: int) -> list[dict]:
    h, w = img.shape[:2]
    out = []
    for _ in range(count):
        width = int(rng.integers(1, 3))
        x = int(rng.integers(0, max(1, w - width)))
        length = max(1, int(round(rng.uniform(*SCRATCH_SPAN) * h)))
        y0 = int(rng.integers(0, h - length + 1))
        delta = float(rng.uniform(*SCRATCH_DELTA)) * (1 if rng.random() < 0.5 else -1)
        period, phase = rng.uniform(0.5 * h, 2 * h), rng.uniform(0, 2 * math.pi)
        # x wanders between x and x + 1 along a slow sine: at most 1 px from the line.
        shift = (np.sin(2 * math.pi * np.arange(length) / period + phase) > 0.3).astype(int)
        shape = np.zeros((length, width + 1), dtype=bool)
        for k in range(width):
            shape[np.arange(length), shift + k] = True
        shape, x0, y1 = _clip_box(shape, x, y0, h, w)
        region = img[y1:y1 + shape.shape[0], x0:x0 + shape.shape[1]]
        region[shape] += delta
        out.append({"frame": frame, "x": x, "y": y0, "length": length, "width": width,
                    "delta": round(delta, 4), **_entry(shape, x0, y1)})
    return out


def degrade_frame(frame: np.ndarray, spec: Degradation, rng: np.random.Generator, index: int
                  ) -> tuple[np.ndarray, float, list[dict], list[dict]]:
    """One (H, W, 3) uint8 frame -> (degraded uint8, gain, specks, scratches)."""
    img = frame.astype(np.float32) * np.float32(1 / 255)
    if spec.blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), spec.blur, borderType=cv2.BORDER_REFLECT)
    gain = float(rng.uniform(1 - spec.flicker, 1 + spec.flicker))
    img *= np.float32(gain)
    if spec.grain > 0:
        img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(spec.grain)
    specks = _add_specks(img, rng, spec.specks, index)
    scratches = _add_scratches(img, rng, spec.scratches, index)
    out = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    if spec.jpeg:
        ok, buf = cv2.imencode(".jpg", out[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(spec.jpeg)])
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    return np.ascontiguousarray(out), gain, specks, scratches


def degrade(frames: np.ndarray, spec: Degradation | None = None, seed: int = 0, start: int = 0
            ) -> tuple[np.ndarray, dict]:
    """Degrade frames ``start .. start + N - 1`` of a clip.

    Args:
        frames: ``(N, H, W, 3)`` uint8 RGB.
        spec: what to do (``Degradation()``: flicker ±10 %, grain 8/255, 20 specks, 2 scratches).
        seed: the clip's seed; frame ``start + i`` uses ``default_rng([seed, start + i])``.
        start: index of ``frames[0]`` in the clip.

    Returns:
        ``(degraded, record)``: the degraded ``(N, H, W, 3)`` uint8 frames and a dict with ``spec``,
        ``seed``, ``frames`` (the indices), ``gains`` (one per frame), ``specks`` and ``scratches``
        (one entry each, with ``frame``, position, look, ``bbox`` and ``rows``; see the module doc).
        Records of consecutive batches concatenate list by list into the record of the whole run.
    """
    spec = spec or Degradation()
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (N, H, W, 3), got {frames.dtype} {frames.shape}")
    if seed < 0 or start < 0:
        raise ValueError(f"seed and start must be >= 0, got {seed} and {start}")
    out = np.empty_like(frames)
    record: dict = {"spec": spec.to_json(), "seed": int(seed), "frames": [], "gains": [], "specks": [],
                    "scratches": []}
    for i, frame in enumerate(frames):
        index = start + i
        rng = np.random.default_rng([seed, index])
        out[i], gain, specks, scratches = degrade_frame(frame, spec, rng, index)
        record["frames"].append(index)
        record["gains"].append(round(gain, 6))
        record["specks"].extend(specks)
        record["scratches"].extend(scratches)
    return out, record
