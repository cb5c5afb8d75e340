"""Colour hints: sparse points, scribbles and filled polygons of a known colour on some frames,
spread along luminance edges.

A hints file is JSON::

    {"hints": [
      {"frame": 120, "points": [[x, y], ...], "color": "#c03020"},
      {"time": "00:01:23.040", "polygon": [[x, y], ...], "color": [192, 48, 32]},
      {"frame": 7, "scribble": [[x, y], ...], "width": 6, "color": "#204080"}
    ]}

Coordinates are pixels of the decoded (upright) frame, ``meta.display_width`` x
``meta.display_height``; ``time`` (``[HH:]MM:SS.mmm``, ``SS.mmm`` or a number of seconds from the
start of the stream) becomes the frame ``round(t * frame_rate)``; ``width`` is the scribble's stroke
in frame pixels (default 4). Only the colour's chroma is used (its CIE a*, b*): the film keeps its
own lightness.

:func:`rasterize` draws one frame's hints at a working size; :func:`spread` carries their chroma
along the luminance (:mod:`vidcolor.guides.solver`): alone, or as a correction of the automatic
colorizer's chroma that fades back to it away from the hints, with a confidence per pixel;
:func:`apply_hints` does both for a full-size frame.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidcolor.color import rgb_to_lab
from vidcolor.errors import InputError
from vidcolor.guides import solver
from vidcolor.io.probe import VideoMeta
from vidcolor.models.runtime import resize, working_size
from vidcolor.ops import guided_upsample

KINDS = ("points", "polygon", "scribble")
KEYS = frozenset({"frame", "time", "color", "width", *KINDS})
DEFAULT_WIDTH = 4.0
# Solver settings chosen on training photographs (docs/models/evaluate_hints.py --tune).
SIZE = 96         # short side of the working size
SIGMA = 2.0       # affinity scale, L* units
REACH = 0.5       # how far a hint's correction reaches in a flat region, fraction of the short side
FALLOFF = 0.25    # with a prior: the correction is weighted by confidence ** FALLOFF
PRIOR_SIGMA = 2.0  # with a prior: its a*b* differences lower the affinity too (scale in a*b* units; 0: off)


@dataclass(frozen=True)
class Hint:
    """One hint entry: ``kind`` is ``points``, ``polygon`` or ``scribble``; ``coords`` frame pixels
    ``(x, y)``; ``rgb`` 8-bit sRGB; ``width`` the scribble's stroke in frame pixels."""

    frame: int
    kind: str
    coords: tuple[tuple[float, float], ...]
    rgb: tuple[int, int, int]
    width: float = DEFAULT_WIDTH

    @property
    def ab(self) -> tuple[float, float]:
        """The colour's CIE a*, b* (D65)."""
        lab = rgb_to_lab(torch.tensor(self.rgb, dtype=torch.float64).view(3, 1, 1) / 255.0)
        return float(lab[1, 0, 0]), float(lab[2, 0, 0])


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _colour(value: Any) -> tuple[int, int, int]:
    if isinstance(value, str):
        m = re.fullmatch(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})", value.strip())
        if not m:
            raise ValueError(f"bad colour {value!r} (expected '#rrggbb', '#rgb' or [r, g, b] in 0..255)")
        hx = m.group(1) if len(m.group(1)) == 6 else "".join(c * 2 for c in m.group(1))
        return int(hx[0:2], 16), int(hx[2:4], 16), int(hx[4:6], 16)
    if (isinstance(value, list) and len(value) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value)):
        return value[0], value[1], value[2]
    raise ValueError(f"bad colour {value!r} (expected '#rrggbb', '#rgb' or [r, g, b] in 0..255)")


def _seconds(value: Any) -> float:
    if _number(value):
        t = float(value)
    elif isinstance(value, str) and re.fullmatch(r"(\d+:){0,2}\d+(\.\d+)?", value.strip()):
        t = 0.0
        for part in value.strip().split(":"):
            t = t * 60 + float(part)
    else:
        raise ValueError(f"bad time {value!r} (expected HH:MM:SS.mmm, MM:SS.mmm or seconds)")
    if not math.isfinite(t) or t < 0:
        raise ValueError(f"bad time {value!r} (must be a non-negative number of seconds)")
    return t


def _frame(entry: dict, meta: VideoMeta | None) -> int:
    if ("frame" in entry) == ("time" in entry):
        raise ValueError("needs exactly one of 'frame' and 'time'")
    if "frame" in entry:
        frame = entry["frame"]
        if not isinstance(frame, int) or isinstance(frame, bool) or frame < 0:
            raise ValueError(f"bad frame {frame!r} (expected a frame number >= 0)")
    else:
        if meta is None:
            raise ValueError("'time' needs the film's frame rate: give a frame number")
        frame = round(_seconds(entry["time"]) * meta.frame_rate)
    if meta is not None and meta.frame_count is not None and frame >= meta.frame_count:
        raise ValueError(f"frame {frame} is beyond the film's {meta.frame_count} frames")
    return frame


def _coords(entry: dict, kind: str, meta: VideoMeta | None) -> tuple[tuple[float, float], ...]:
    pts = entry[kind]
    least = 3 if kind == "polygon" else 1
    if not isinstance(pts, list) or len(pts) < least:
        raise ValueError(f"'{kind}' needs a list of at least {least} [x, y] point{'s' if least > 1 else ''}")
    out = []
    for p in pts:
        if (not isinstance(p, list) or len(p) != 2
                or not all(_number(v) and math.isfinite(v) for v in p)):
            raise ValueError(f"bad point {p!r} in '{kind}' (expected [x, y] in pixels)")
        x, y = float(p[0]), float(p[1])
        w, h = (meta.display_width, meta.display_height) if meta is not None else (math.inf, math.inf)
        if not (0 <= x < w and 0 <= y < h):
            size = f" of the {w}x{h} frame" if meta is not None else ""
            raise ValueError(f"point [{p[0]}, {p[1]}] in '{kind}' is outside the frame{size}")
        out.append((x, y))
    return tuple(out)


def _entry(entry: Any, meta: VideoMeta | None) -> Hint:
    if not isinstance(entry, dict):
        raise ValueError("must be an object with 'frame' or 'time', one of 'points', 'polygon', 'scribble', "
                         "and 'color'")
    unknown = sorted(set(entry) - KEYS)
    if unknown:
        raise ValueError(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}")
    kinds = [k for k in KINDS if k in entry]
    if len(kinds) != 1:
        raise ValueError("needs exactly one of 'points', 'polygon' and 'scribble'")
    if "color" not in entry:
        raise ValueError("has no 'color'")
    kind = kinds[0]
    width = entry.get("width", DEFAULT_WIDTH)
    if "width" in entry and kind != "scribble":
        raise ValueError("'width' is for scribbles only")
    if not _number(width) or not math.isfinite(width) or width <= 0:
        raise ValueError(f"bad width {width!r} (expected a positive number of pixels)")
    return Hint(frame=_frame(entry, meta), kind=kind, coords=_coords(entry, kind, meta),
                rgb=_colour(entry["color"]), width=float(width))


def load_hints(path: str | Path, meta: VideoMeta | None = None) -> dict[int, list[Hint]]:
    """Read and check a hints file -> ``{frame: [Hint, ...]}`` in file order. With ``meta`` the
    points are checked against the frame size, frames against the frame count, and ``time`` entries
    are converted; without it ``time`` is refused. Every problem is an :class:`InputError` naming
    the file and the entry (counted from 1)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"hints file {path}: not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"hints file {path}: cannot be read ({e.__class__.__name__}: {e})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"hints file {path}: not valid JSON ({e.msg} at line {e.lineno}, "
                         f"column {e.colno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("hints"), list):
        raise InputError(f"hints file {path}: expected an object {{\"hints\": [...]}}")
    out: dict[int, list[Hint]] = {}
    for i, entry in enumerate(data["hints"], 1):
        try:
            hint = _entry(entry, meta)
        except ValueError as e:
            raise InputError(f"hints file {path}, entry {i}: {e}") from None
        out.setdefault(hint.frame, []).append(hint)
    return out


def rasterize(hints: list[Hint], height: int, width: int, frame_height: int,
              frame_width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One frame's hints drawn at ``height`` x ``width`` (coordinates scaled from the frame's size,
    pixel centres kept) -> (a*b* ``(2, h, w)`` float32, mask ``(1, h, w)`` float32 in [0, 1]). Points
    are single pixels, scribbles polylines of their width (at least one pixel), polygons filled.
    Later entries paint over earlier ones."""
    import cv2

    canvas = np.zeros((height, width, 3), np.float32)
    sx, sy = width / frame_width, height / frame_height
    shift = 4  # OpenCV's fixed-point drawing: coordinates in 1/16 pixel
    for hint in hints:
        a, b = hint.ab
        colour = (a, b, 1.0)
        xy = np.array([((x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5) for x, y in hint.coords], np.float64)
        if hint.kind == "points":
            for x, y in xy:
                row = min(max(int(math.floor(y + 0.5)), 0), height - 1)
                canvas[row, min(max(int(math.floor(x + 0.5)), 0), width - 1)] = colour
            continue
        if hint.kind == "polygon":
            pts = np.round(xy * (1 << shift)).astype(np.int32)
            cv2.fillPoly(canvas, [pts], colour, lineType=cv2.LINE_8, shift=shift)
        else:
            _stroke(canvas, xy, max(0.5, 0.25 * hint.width * (sx + sy)), colour)
    t = torch.from_numpy(canvas).permute(2, 0, 1).contiguous()
    return t[:2].contiguous(), t[2:].contiguous()


def _stroke(canvas: np.ndarray, xy: np.ndarray, radius: float, colour: tuple[float, float, float]) -> None:
    """Paint the pixels whose centre is closer than ``radius`` to the polyline ``xy`` ``(n, 2)``
    (OpenCV's thick lines are up to two pixels wider than asked)."""
    height, width = canvas.shape[:2]
    segments = zip(xy[:-1], xy[1:]) if len(xy) > 1 else [(xy[0], xy[0])]
    for p, q in segments:
        x0 = max(int(np.floor(min(p[0], q[0]) - radius)), 0)
        x1 = min(int(np.ceil(max(p[0], q[0]) + radius)), width - 1)
        y0 = max(int(np.floor(min(p[1], q[1]) - radius)), 0)
        y1 = min(int(np.ceil(max(p[1], q[1]) + radius)), height - 1)
        if x0 > x1 or y0 > y1:
            continue
        yy, xx = np.mgrid[y0:y1 + 1, x0:x1 + 1].astype(np.float64)
        d = q - p
        t = np.clip(((xx - p[0]) * d[0] + (yy - p[1]) * d[1]) / max(float(d @ d), 1e-12), 0, 1)
        near = (xx - p[0] - t * d[0]) ** 2 + (yy - p[1] - t * d[1]) ** 2 < radius * radius
        canvas[y0:y1 + 1, x0:x1 + 1][near] = colour


def spread(L: torch.Tensor, hint_ab: torch.Tensor, hint_mask: torch.Tensor,
           prior_ab: torch.Tensor | None = None,
           sigma: float = SIGMA, reach: float = REACH, falloff: float = FALLOFF,
           prior_sigma: float = PRIOR_SIGMA, max_iter: int = 400) -> tuple[torch.Tensor, torch.Tensor]:
    """Spread hint chroma along the luminance of one frame (:func:`vidcolor.guides.solver.solve`).

    ``L`` ``(1, h, w)`` L* in [0, 100]; ``hint_ab`` ``(2, h, w)`` and ``hint_mask`` ``(1, h, w)`` as
    :func:`rasterize` makes them; ``prior_ab`` ``(2, h, w)`` the automatic colorizer's chroma or
    None. Each pixel is tied to each hint by the solve (the affinities on L*, and on the prior's
    a*b* with ``prior_sigma`` > 0; the pull to 0 makes ties fade over about ``reach`` times the short
    side in a flat region, far sooner across edges). Without a prior a pixel gets the hints' colours
    weighted by its ties to them. With one, it gets the prior plus the same weighted mean of the
    hints' corrections ``hint - prior``, scaled by ``confidence ** falloff``, so far from every hint
    the result is the prior. Returns (a*b* ``(2, h, w)``, confidence ``(1, h, w)`` in [0, 1]:
    how strongly each pixel is tied to a hint, the same solve run on the mask)."""
    L = L.float()
    h, w = L.shape[-2:]
    mask = hint_mask.float().clamp(0, 1)
    if not bool((mask > 0).any()):
        base = prior_ab.float().clone() if prior_ab is not None else torch.zeros((2, h, w))
        return base, torch.zeros((1, h, w))
    mu = 1.0 / (reach * min(h, w)) ** 2
    target = hint_ab.float() if prior_ab is None else hint_ab.float() - prior_ab.float()
    u = solver.solve(L, torch.cat([target, torch.ones_like(mask)]), mask, mu, sigma=sigma, max_iter=max_iter,
                     guide=prior_ab, guide_sigma=prior_sigma if prior_ab is not None else 0.0)
    conf = u[2:].clamp(0, 1)
    # the hints' value (or correction) where the pixel is tied to them; where it is not (confidence at
    # the solver's rounding level, e.g. behind an edge) the ratio of two rounding errors is kept out
    tied = u[:2] / u[2:].clamp(min=1e-3)
    if prior_ab is None:
        return tied, conf
    return prior_ab.float() + tied * conf.pow(falloff), conf


def apply_hints(L: torch.Tensor, hints: list[Hint], prior_ab: torch.Tensor | None = None, size: int = SIZE,
                **options: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """One full-size frame: ``L`` ``(1, H, W)`` L*, its hints, the prior chroma ``(2, H, W)`` or None
    -> (a*b* ``(2, H, W)``, confidence ``(1, H, W)``). Solved with short side ``size`` and brought back
    with the guided upsampling on L (with a prior, only the correction is upsampled, so the prior
    keeps its full-size detail). ``options`` go to :func:`spread`."""
    H, W = L.shape[-2:]
    small = working_size(H, W, size) if min(H, W) > size else (H, W)
    L_small = resize(L[None].float(), small)
    prior_small = resize(prior_ab[None].float(), small)[0] if prior_ab is not None else None
    hint_ab, mask = rasterize(hints, small[0], small[1], H, W)
    ab, conf = spread(L_small[0], hint_ab, mask, prior_small, **options)
    if small == (H, W):
        return ab, conf
    def up(x: torch.Tensor) -> torch.Tensor:
        return guided_upsample(x[None] / 110.0, L_small / 100.0, L[None].float() / 100.0)[0] * 110.0

    conf_full = resize(conf[None], (H, W))[0].clamp_(0, 1)
    if prior_ab is None:
        return up(ab), conf_full
    return prior_ab.float() + up(ab - prior_small), conf_full
