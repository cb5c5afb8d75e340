"""Film restoration: deflicker, dust and scratch repair, and degrain, on one motion-compensated window.

Frame ``t`` is restored from itself and its neighbours ``t - 1`` and ``t + 1`` in the same shot
(``vidcolor.restore.motion.MotionWindow``: DIS flow at a working size, scene cuts, brightness
levels), in this order:

1. **deflicker**: the frame's log brightness ``level_t`` (the exposure changes measured between
   motion-compensated frames, summed over the shot) is moved towards the least-squares line through
   the levels of the ``window`` frames either side in the shot: exposure pumping goes, a real fade
   (a straight line in log brightness) and a cut stay. With ``regions`` = G > 1 this is done for
   each cell of a G x G grid and the factors are interpolated between the cells' centres, so
   pumping that differs across the frame (uneven exposure, a flickering light) goes too. The neighbours are scaled to the frame's new
   brightness, whatever the deflicker strength, so the next steps compare like with like.
2. **dust**: pixels that are temporal outliers against both flow-warped neighbours, while these agree
   (``filters.find_dust``), are replaced by the neighbours' mean: dust specks and line scratches
   that last one frame. The first (last) frame of a shot takes the two frames after (before) it as
   its neighbours.
3. **degrain**: a weighted mean of the frame and the warped neighbours, each weight falling to zero
   where the neighbour differs by more than the frame's estimated noise explains
   (``filters.match_weight``).

The stage reads the frame after each chunk from ``Chunk.ahead`` (and ``window`` frames for the
deflicker's centred line), so its output does not depend on chunking; its state (the window's
measured frames and the two previous decoded frames) makes resumed runs exact. It works on the decoded
frames, so it comes first in a style. ``channels = "luma"`` restores the luma only and takes the
run's luma-only decoding when every stage allows it (restore-colorize, restore-noir: what follows
keeps only the luma anyway). The arithmetic runs on the CPU (numpy and OpenCV) whatever the device.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from vidcolor.errors import InputError
from vidcolor.restore.filters import find_dust, match_weight, noise_sigma, temporal_average
from vidcolor.restore.motion import MotionWindow, inside_mask, luma_of, upsample_flow, warp_map
from vidcolor.stages.base import Chunk, Stage, StageOptions, option, register_stage


@dataclass
class Prepared:
    """What the window gives the filters for one frame: its brightness factor, and each neighbour in
    its shot warped onto it as decoded (uint8 or float32), the factor that brings it to [0, 1] at the
    frame's new brightness, and where it was warped from inside the frame."""

    gain: Any
    warped: list[np.ndarray] = field(default_factory=list)
    scales: list[Any] = field(default_factory=list)
    valid: list[np.ndarray] = field(default_factory=list)


@dataclass(frozen=True)
class RestoreOptions(StageOptions):
    deflicker: float = option(1.0, float, 0, 1)
    dust: float = option(1.0, float, 0, 1)
    degrain: float = option(1.0, float, 0, 2)
    window: int = option(5, int, 1, 12)
    dust_threshold: float = option(0.08, float, 0.01, 1)
    scene_cut: float = option(0.35, float, 0, 1, lo_open=True)
    work_size: int = option(240, int, 64, 1080)
    regions: int = option(1, int, 1, 8)
    channels: str = option("rgb", str, choices=("rgb", "luma"))


@register_stage("restore")
class Restore(Stage):
    """Deflicker + dust + degrain (strengths 0..1, degrain 0..2; 0 turns a filter off)."""

    Options: ClassVar[type[StageOptions]] = RestoreOptions

    def __init__(self, deflicker: float = 1.0, dust: float = 1.0, degrain: float = 1.0, window: int = 5,
                 dust_threshold: float = 0.08, scene_cut: float = 0.35, work_size: int = 240,
                 regions: int = 1, channels: str = "rgb") -> None:
        self.options = RestoreOptions(deflicker=deflicker, dust=dust, degrain=degrain, window=window,
                                      dust_threshold=dust_threshold, scene_cut=scene_cut, work_size=work_size,
                                      regions=regions, channels=channels)
        self.deflicker, self.dust, self.degrain = float(deflicker), float(dust), float(degrain)
        self.window, self.dust_threshold, self.channels = int(window), float(dust_threshold), channels
        self.motion = MotionWindow(work_size=work_size, scene_cut=scene_cut, keep=self.radius + 1,
                                   regions=regions if self.deflicker > 0 else 1)
        self._past: list[np.ndarray] = []  # the two decoded frames before the next one to restore
        self._next = 0  # index of the next frame to restore
        self.scene_cuts: list[int] = []

    @property
    def radius(self) -> int:
        """Frames either side the deflicker's line takes."""
        return self.window if self.deflicker > 0 else 1

    @property
    def lookahead(self) -> int:  # type: ignore[override]
        return max(self.radius, 2)  # 2: a shot's first frame takes the two after it

    @property
    def accepts_uint8(self) -> bool:  # type: ignore[override]
        return True

    @property
    def accepts_grey(self) -> bool:  # type: ignore[override]
        return self.channels == "luma"

    # -- frames in and out -------------------------------------------------------------------------
    @staticmethod
    def _hwc(x: torch.Tensor) -> np.ndarray:
        """(T, C, H, W) uint8 or float -> (T, H, W, C) numpy on the CPU, as it is (a view when the
        tensor is a permuted (T, H, W, C) array, as the run's frames are)."""
        hwc = x.detach().permute(0, 2, 3, 1).cpu()
        return hwc.numpy() if hwc.dtype in (torch.uint8, torch.float32) else hwc.float().numpy()

    @staticmethod
    def _float(frame: np.ndarray) -> np.ndarray:
        if frame.dtype == np.uint8:
            return np.multiply(frame, np.float32(1 / 255), dtype=np.float32)
        return np.array(frame, np.float32)  # a copy: restore_frame writes into it

    def process(self, chunk: Chunk) -> Chunk:
        return self.finish(chunk, self.prepare(chunk))

    def phases(self) -> list[Stage]:
        """Two pipeline steps, each in a thread of its own (``pipelines/overlap.py``): the window
        (measuring, flow, warping the neighbours) in frame order, then the filters of the chunk
        before; the same frames as ``process``."""
        pending: collections.deque = collections.deque()
        return [RestorePhase(self, "motion", pending), RestorePhase(self, "filters", pending)]

    def prepare(self, chunk: Chunk) -> list[Prepared]:
        """The window's part for each frame of ``chunk``, in frame order (it updates the state)."""
        if chunk.source is not None and chunk.frames is not chunk.source:
            raise InputError("a restore stage works on the decoded frames: put it first in the style")
        frames = self._hwc(chunk.frames)
        ahead = self._hwc(chunk.ahead) if chunk.ahead is not None else frames[:0]
        if chunk.index != self._next:
            self.reset()
        front = self.motion.front
        for k, frame in enumerate(list(frames) + list(ahead)):
            i = chunk.index + k
            if front is None or i > front:
                m = self.motion.measure(i, frame)
                if m.cut and i > 0 and m.index - 1 in self.motion.frames:
                    self.scene_cuts.append(i)
        out = []
        later = list(frames) + list(ahead)
        for k in range(len(frames)):
            t = chunk.index + k
            near = {t - 1 - i: f for i, f in enumerate(reversed(self._past))}
            near.update({t + d: later[k + d] for d in (1, 2) if k + d < len(later)})
            out.append(self.prepare_frame(t, frames[k].shape, near))
            # decoded, as it came (a copy: the chunk's memory is reused)
            self._past = [*self._past[-1:], np.array(frames[k])]
            self.motion.forget_before(t + 1)
        self._next = chunk.index + len(frames)
        return out

    def finish(self, chunk: Chunk, prepared: list[Prepared]) -> Chunk:
        """The filters on each frame of ``chunk`` with what :meth:`prepare` gave for it."""
        import cv2

        x = chunk.frames
        frames = self._hwc(x)
        out = np.empty(frames.shape, np.uint8 if x.dtype == torch.uint8 else np.float32)
        for k, prep in enumerate(prepared):
            restored = self.filter_frame(self._float(frames[k]), prep)
            if out.dtype == np.uint8:
                out[k] = cv2.convertScaleAbs(restored, alpha=255.0).reshape(out[k].shape)
            else:
                out[k] = restored.reshape(out[k].shape)
        result = torch.from_numpy(out).permute(0, 3, 1, 2)
        return chunk.with_frames(result if x.dtype == torch.uint8 else result.to(x.device, x.dtype))

    # -- one frame --------------------------------------------------------------------------------
    def gains(self, t: int, others: list[int]) -> tuple[Any, list[Any]]:
        """Brightness factor of frame ``t`` (the deflicker's) and of each neighbour in ``others`` (to
        the frame's new brightness): numbers, or (G, G) grids of factors with ``regions`` > 1."""
        m = self.motion
        if m.frames[t].regions is not None:
            level = m.frames[t].regions
            target = level + self.deflicker * (m.reference_regions(t, self.radius) - level)
            return np.exp(target - level), [np.exp(target - m.frames[n].regions) for n in others]
        level = m.frames[t].level
        target = level
        if self.deflicker > 0:
            target = level + self.deflicker * (m.reference_level(t, self.radius) - level)
        return math.exp(target - level), [math.exp(target - m.frames[n].level) for n in others]

    def prepare_frame(self, t: int, shape: tuple[int, ...], near: dict[int, np.ndarray]) -> Prepared:
        """Frame ``t``'s brightness factor and its neighbours in the shot warped onto it, as decoded:
        the frames before and after it, or at the first (last) frame of a shot the two after (before)
        it, so dust there still has two witnesses. ``near``: the decoded frames ``t - 2 .. t + 2``
        that exist (uint8 or float32)."""
        h, w = shape[:2]
        m = self.motion

        def usable(n: int) -> bool:
            return n in near and n in m.frames and m.same_shot(n, t)

        order = [t - 1, t + 1]
        if not usable(t - 1) or m.frames[t].flow_back is None:
            order = [t + 1, t + 2]
        elif not usable(t + 1):
            order = [t - 1, t - 2]
        cands = [(n, near[n], m.frames[t].flow_back if n == t - 1 else None) for n in order if usable(n)]
        gain, ngains = self.gains(t, [n for n, _, _ in cands])
        prep = Prepared(gain)
        if not (self.dust > 0 or self.degrain > 0):
            return prep
        for (n, img, flow), g in zip(cands, ngains):
            if flow is None:
                flow = m.flow(m.frames[t].small, m.frames[n].small)
            # warped as decoded (uint8 moves a quarter of the bytes); scaled to the frame's brightness later
            prep.warped.append(warp_map(img, upsample_flow(flow, h, w)))
            prep.scales.append(g / 255.0 if img.dtype == np.uint8 else g)  # a number or a (G, G) grid
            prep.valid.append(inside_mask(flow, h, w))
        return prep

    def filter_frame(self, frame: np.ndarray, prep: Prepared) -> np.ndarray:
        """Frame (H, W, C) float32 in [0, 1] deflickered, cleaned of dust and degrained with its
        :class:`Prepared` neighbours; ``frame`` is overwritten."""
        h, w, c = frame.shape
        luma_only = self.channels == "luma" and c == 3
        luma = luma_of(frame) if luma_only else None
        gain = factor_map(prep.gain, h, w)
        cur = luma[..., None] * gain if luma is not None else frame.__imul__(gain)
        warped = []
        for img, scale in zip(prep.warped, prep.scales):
            wimg = np.multiply(img.reshape(h, w, -1), factor_map(scale, h, w), dtype=np.float32)
            warped.append(luma_of(wimg)[..., None] if luma_only else wimg)
        valid = prep.valid
        if warped:
            cur_y = luma_of(cur)
            w_y = [luma_of(x) for x in warped]
            sigma = noise_sigma(cur_y)
            if self.dust > 0 and len(warped) == 2:
                thr = max(self.dust_threshold, 4.0 * sigma)
                dust = find_dust(cur_y, w_y[0], w_y[1], valid[0] * valid[1], thr, max(8, min(h, w) // 40), sigma)
                ys, xs = np.nonzero(dust)
                if len(ys):  # the neighbours' mean on the dust pixels only
                    fill = 0.5 * (warped[0][ys, xs] + warped[1][ys, xs])
                    cur[ys, xs] += self.dust * (fill - cur[ys, xs])
                    cur_y[ys, xs] = luma_of(cur[ys, xs][None])[0]
            if self.degrain > 0:
                weights = [self.degrain * match_weight(cur_y, y, sigma) * v for y, v in zip(w_y, valid)]
                cur = temporal_average(cur, warped, weights)
        np.clip(cur, 0.0, 1.0, out=cur)
        if luma is not None:  # keep the frame's chroma: move every channel by the luma's change
            return np.clip(frame + (cur - luma[..., None]), 0.0, 1.0)
        return cur

    # -- state --------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {f"window.{k}": v for k, v in self.motion.state_dict().items()}
        state["next"] = torch.tensor(self._next)
        for i, frame in enumerate(self._past):
            state[f"past.{i}"] = torch.from_numpy(frame.copy())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.motion.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("window.")})
        self._next = int(state.get("next", torch.tensor(0)))
        self._past = [state[f"past.{i}"].numpy().copy() for i in range(2) if f"past.{i}" in state]

    def reset(self) -> None:
        self.motion.reset()
        self._past = []
        self._next = 0

    def describe(self) -> dict[str, Any]:
        return {"stage": self.name, **self.options.as_kwargs()}


def factor_map(factor: Any, height: int, width: int) -> Any:
    """A brightness factor to multiply (H, W, C) frames by: a number as float32, a (G, G) grid of
    region factors as a smooth (H, W, 1) map (bilinear between the cells' centres)."""
    if np.isscalar(factor):
        return np.float32(factor)
    import cv2

    grid = np.asarray(factor, np.float32)
    return cv2.resize(grid, (width, height), interpolation=cv2.INTER_LINEAR)[..., None]


class RestorePhase(Stage):
    """One step of a restore stage split for pipelining (:meth:`Restore.phases`): ``motion`` leaves
    its :class:`Prepared` frames in the parent's queue (chunks arrive in order, one thread per step),
    ``filters`` takes them."""

    def __init__(self, parent: Restore, step: str, pending: collections.deque) -> None:
        self.parent, self.step, self.pending = parent, step, pending
        self.name = f"{parent.name}:{step}"

    def process(self, chunk: Chunk) -> Chunk:
        if self.step == "motion":
            self.pending.append((chunk.index, self.parent.prepare(chunk)))
            return chunk
        index, prepared = self.pending.popleft()
        if index != chunk.index:
            raise RuntimeError(f"restore phases out of step: prepared chunk {index}, filtering {chunk.index}")
        return self.parent.finish(chunk, prepared)


def _only(name: str, **on: float) -> type[Restore]:
    """A restore stage with one filter: the same options, the other filters off by default."""
    fields = {"deflicker": 0.0, "dust": 0.0, "degrain": 0.0, **on}

    @dataclass(frozen=True)
    class OnlyOptions(RestoreOptions):
        deflicker: float = option(fields["deflicker"], float, 0, 1)
        dust: float = option(fields["dust"], float, 0, 1)
        degrain: float = option(fields["degrain"], float, 0, 2)

    cls = type(name.capitalize(), (Restore,), {"Options": OnlyOptions, "__doc__": f"``restore`` with only {name}."})
    return register_stage(name)(cls)  # type: ignore[return-value]


Deflicker = _only("deflicker", deflicker=1.0)
Degrain = _only("degrain", degrain=1.0)
Dust = _only("dust", dust=1.0)
