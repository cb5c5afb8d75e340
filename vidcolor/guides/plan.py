"""The planning pass of a guided run: shots, guides, and the backward carriers, spooled to disk.

Before the main pass decodes the film for the colorizer, :func:`build_plan` decodes its luma once
(:func:`vidcolor.guides.shots.scan_lightness`, at the colorizer's working size) and:

- finds the shots (:class:`~vidcolor.guides.shots.CutDetector`): guides never cross a cut;
- turns each keyframe image into a guide: its a*b* at the working size (its own lightness is not
  used), checked against the film: a keyframe whose lightness does not correlate with its frame's
  (a wrong number, another shot) is an ``InputError`` naming the file and the best-matching frame;
- turns each hinted frame into a guide (:func:`vidcolor.guides.hints.spread`, hints alone: the
  main pass re-spreads them over the automatic colour at that frame);
- carries each guide *backward* to the previous guide or the start of its shot
  (:class:`~vidcolor.guides.propagate.Carrier`), which needs the frames before the guide: while
  the open stretch lasts, the flow from each frame to the next and the frame's confidence against
  it (both computed by the cut test already) are spooled to a file (6 bytes a pixel), and the
  carried a*b* and confidence of every frame are written to a second file (3 bytes a pixel), which
  the main pass reads frame by frame (:meth:`GuidePlan.backward`). Memory stays that of a few working-size
  frames whatever the length of the film; disk holds the stretches that end at a guide (frames after
  the film's last guide are not spooled). Both files live in a temporary folder that
  :meth:`GuidePlan.close` removes.
"""

from __future__ import annotations

import bisect
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.color import rgb_to_lab
from vidcolor.errors import InputError
from vidcolor.guides.keyframes import Keyframe, read_keyframe
from vidcolor.guides.propagate import Carrier
from vidcolor.guides.shots import CutDetector, scan_lightness
from vidcolor.io.probe import VideoMeta
from vidcolor.models.runtime import working_size

MATCH_SIZE = 48        # short side of the thumbnails keyframes are matched on
MIN_CORRELATION = 0.8  # lightness correlation a keyframe needs with its frame
ASPECT_TOL = 0.02      # relative difference of aspect ratio a keyframe image may have


@dataclass
class Guide:
    """Colour given for one frame at the working size: ``ab`` ``(2, h, w)``, ``conf`` ``(1, h, w)``,
    ``L`` ``(1, h, w)`` the film frame's L* (for the exemplar features), ``hints`` (the entries of a
    frame with hints and no keyframe, re-spread in the main pass), ``name`` for messages. Hints on a
    keyframe's frame correct the keyframe's colour."""

    frame: int
    ab: torch.Tensor
    conf: torch.Tensor
    name: str
    L: torch.Tensor | None = None
    hints: list = field(default_factory=list)


def keyframe_guide(kf: Keyframe, size: tuple[int, int], frame_shape: tuple[int, int]) -> tuple[Guide, torch.Tensor]:
    """The guide of a keyframe image and the image's own L* ``(1, h, w)`` (for the check)."""
    import cv2

    img = read_keyframe(kf.path)
    (fh, fw), (ih, iw) = frame_shape, img.shape[:2]
    if abs(iw / ih - fw / fh) > ASPECT_TOL * fw / fh:
        raise InputError(f"{kf.path}: {iw}x{ih} does not have the film's aspect ratio ({fw}x{fh})")
    small = cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    lab = rgb_to_lab(torch.from_numpy(small).permute(2, 0, 1).float().div_(255)[None])[0]
    return Guide(kf.frame, lab[1:].contiguous(), torch.ones(1, *size), kf.path.name), lab[:1].contiguous()


def _thumb(L: torch.Tensor) -> torch.Tensor:
    """(N, 1, h, w) L* -> (N, P) zero-mean unit-norm thumbnails (correlation = dot product)."""
    x = F.interpolate(L.float(), size=working_size(L.shape[-2], L.shape[-1], MATCH_SIZE), mode="area").flatten(1)
    x = x - x.mean(1, keepdim=True)
    return x / x.norm(dim=1, keepdim=True).clamp(min=1e-6)


class _Spool:
    """Fixed-size records appended to a file and read back by number."""

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.path, self.shape, self.dtype = path, shape, np.dtype(dtype)
        self.size = int(np.prod(shape)) * self.dtype.itemsize
        self.file = open(path, "w+b")  # noqa: SIM115  (closed by close())
        self.count = 0

    def append(self, record: np.ndarray) -> int:
        self.file.seek(self.count * self.size)
        self.file.write(np.ascontiguousarray(record, self.dtype).tobytes())
        self.count += 1
        return self.count - 1

    def read(self, slot: int) -> np.ndarray:
        data = os.pread(self.file.fileno(), self.size, slot * self.size)
        return np.frombuffer(data, self.dtype).reshape(self.shape)

    def clear(self) -> None:
        self.file.truncate(0)
        self.count = 0

    def close(self) -> None:
        self.file.close()


class GuidePlan:
    """What the main pass needs: ``shot_starts`` (sorted), ``guides`` by frame, the backward carriers
    (:meth:`backward`), the working ``size``. The planning pass fills it in frame order, in a thread
    of its own when started by :func:`start_plan` (it then runs ahead of the main pass on the cores
    the main pass leaves idle); :meth:`settle` waits until what a frame needs is known. ``close()``
    stops the pass and removes the spool folder."""

    def __init__(self, size: tuple[int, int], folder: Path) -> None:
        self.size, self.folder = size, folder
        self.shot_starts: list[int] = []
        self.guides: dict[int, Guide] = {}
        self._order: list[int] = []  # guide frames in order
        self._slots: dict[int, tuple[int, int]] = {}  # frame -> (record, guide frame)
        h, w = size
        self._carried = _Spool(folder / "carried.bin", (3, h, w), np.int8)
        # how to move a carrier from frame s + 1 back to s, for each s of the open stretch: the flow
        # s -> s + 1 and the confidence of s (the cut test computed both; 6 bytes a pixel)
        self._moves = _Spool(folder / "moves.bin", (3, h, w), np.float16)
        self._cond = threading.Condition()
        self.scanned = 0          # frames planned so far
        self.failing = False      # a keyframe failed its check: the error comes when the scan ends
        self.done = False
        self.error: BaseException | None = None
        self._stop = False
        self._thread: threading.Thread | None = None

    def _publish(self, scanned: int | None = None, done: bool = False, error: BaseException | None = None) -> None:
        with self._cond:
            if scanned is not None:
                self.scanned = scanned
            self.done = self.done or done
            self.error = self.error or error
            self._cond.notify_all()

    def settle(self, index: int) -> None:
        """Wait until frame ``index``'s shot, guides and backward carrier are known: the pass has gone
        past it and found a later shot start or guide, or ended. Raises the pass's error."""
        with self._cond:
            while not (self.done or self.failing or (self.scanned > index and (
                    (self.shot_starts and self.shot_starts[-1] > index) or (self._order and self._order[-1] > index)))):
                self._cond.wait()
            while self.failing and not self.done:
                self._cond.wait()
            if self.error is not None:
                raise self.error

    def wait(self) -> None:
        """Wait for the whole pass; raise its error."""
        if self._thread is not None:
            self._thread.join()
        if self.error is not None:
            raise self.error

    def shot_start(self, index: int) -> int:
        """The first frame of the shot of frame ``index``."""
        return self.shot_starts[max(bisect.bisect_right(self.shot_starts, index) - 1, 0)]

    def shot_guides(self, index: int) -> list[int]:
        """The guides of frame ``index``'s shot it is carried from: the last at or before it and the
        first after it (as far as the pass has gone: call :meth:`settle` first), sorted."""
        start = self.shot_start(index)
        nxt = bisect.bisect_right(self.shot_starts, index)
        end = self.shot_starts[nxt] if nxt < len(self.shot_starts) else None
        k = bisect.bisect_right(self._order, index)
        near = ([self._order[k - 1]] if k > 0 else []) + ([self._order[k]] if k < len(self._order) else [])
        return [g for g in near if g >= start and (end is None or g < end)]

    def backward(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int] | None:
        """``(ab (2, h, w), conf (1, h, w), guide frame)`` carried back to frame ``index`` from the next
        guide of its shot, or None."""
        slot = self._slots.get(index)
        if slot is None:
            return None
        rec = torch.from_numpy(self._carried.read(slot[0]).astype(np.float32))
        return rec[:2], rec[2:].div_(127.0), slot[1]

    def _carry_back(self, guide: Guide, L_guide: torch.Tensor, first: int) -> None:
        """Carry ``guide`` back over the spooled moves of frames ``guide.frame - 1 .. first``."""
        carrier = Carrier(guide.ab.clone(), guide.conf.clone(), L_guide, guide.frame)
        for k in range(self._moves.count - 1, -1, -1):
            move = torch.from_numpy(self._moves.read(k).astype(np.float32))
            carrier.advance(move[:2], move[2:], carrier.L)  # (the L* of a backward carrier is not used)
            rec = torch.cat([carrier.ab.round().clamp(-127, 127), (carrier.conf * 127).round()])
            self._slots[first + k] = (self._carried.append(rec.to(torch.int8).numpy()), guide.frame)

    def close(self) -> None:
        self._stop = True
        if self._thread is not None:
            self._thread.join()
        self._carried.close()
        self._moves.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def build_plan(path: str | Path, meta: VideoMeta, render_size: int, keyframes: list[Keyframe],
               hints: dict[int, list] | None = None, flow: str = "dis", scene_cut: float = 0.35,
               allow_truncated: bool = False, spool_dir: str | Path | None = None) -> GuidePlan:
    """Scan the film once and plan its guides (module doc), in this thread. ``spool_dir``: where the
    temporary folder goes (default: the system's temporary folder)."""
    plan, pending = _new_plan(meta, render_size, keyframes, spool_dir)
    try:
        _scan(plan, pending, path, meta, render_size, keyframes, hints or {}, flow, scene_cut, allow_truncated)
        return plan
    except BaseException:
        plan.close()
        raise


def start_plan(path: str | Path, meta: VideoMeta, render_size: int, keyframes: list[Keyframe],
               hints: dict[int, list] | None = None, flow: str = "dis", scene_cut: float = 0.35,
               allow_truncated: bool = False, spool_dir: str | Path | None = None) -> GuidePlan:
    """:func:`build_plan` in a background thread: returns at once (keyframe images read and checked
    for their aspect ratio); the main pass calls :meth:`GuidePlan.settle` before each frame."""
    plan, pending = _new_plan(meta, render_size, keyframes, spool_dir)

    def scan() -> None:
        try:
            with torch.inference_mode():
                _scan(plan, pending, path, meta, render_size, keyframes, hints or {}, flow, scene_cut,
                      allow_truncated)
        except BaseException as exc:  # noqa: BLE001  (handed to the main pass by settle)
            plan._publish(error=exc, done=True)

    plan._thread = threading.Thread(target=scan, name="vidcolor-guide-plan", daemon=True)
    plan._thread.start()
    return plan


def _new_plan(meta: VideoMeta, render_size: int, keyframes: list[Keyframe],
              spool_dir: str | Path | None) -> tuple[GuidePlan, dict]:
    frame_shape = (meta.display_height, meta.display_width)
    size = working_size(*frame_shape, render_size)
    plan = GuidePlan(size, Path(tempfile.mkdtemp(prefix="vidcolor-guides-", dir=spool_dir)))
    try:
        pending = {}
        for kf in keyframes:
            guide, L_img = keyframe_guide(kf, size, frame_shape)
            pending[kf.frame] = (guide, _thumb(L_img[None])[0])
        return plan, pending
    except BaseException:
        plan.close()
        raise


def _scan(plan: GuidePlan, pending: dict, path: str | Path, meta: VideoMeta, render_size: int,
          keyframes: list[Keyframe], hints: dict[int, list], flow: str, scene_cut: float,
          allow_truncated: bool) -> None:
    from vidcolor.guides.hints import rasterize, spread

    frame_shape, size = (meta.display_height, meta.display_width), plan.size
    best = {f: (-2.0, -1) for f in pending}   # keyframe -> (best correlation, its frame)
    own = {}                                   # keyframe -> correlation with its own frame
    cuts = CutDetector(flow, scene_cut)
    seg_first, prev_lum = 0, None
    last_guide = max([*pending, *hints], default=-1)  # past it no guide carries colour back: nothing spooled
    for index, L_small, _ in scan_lightness(path, meta, render_size, allow_truncated=allow_truncated):
        if plan._stop:
            return
        starts = cuts.feed(L_small, index)
        lum = (L_small.float() / 100).clamp(0, 1)
        moves = _moves(cuts, lum, prev_lum, index) if index <= last_guide else {}
        prev_lum = lum[-1:]
        thumbs = _thumb(L_small) if pending else None
        for k in range(len(L_small)):
            i = index + k
            for f, (_, t) in pending.items():
                c = float(thumbs[k] @ t)
                if c > best[f][0]:
                    best[f] = (c, i)
                if f == i:
                    own[f] = c
                    plan.failing = plan.failing or c < MIN_CORRELATION
            if starts[k]:
                plan.shot_starts.append(i)
                plan._moves.clear()
                seg_first = i
            elif i <= last_guide and i > seg_first:
                plan._moves.append(moves[i])  # how to go back from frame i to i - 1
            guide = pending[i][0] if i in pending and not plan.failing else None
            if i in hints:
                h_ab, mask = rasterize(hints[i], size[0], size[1], *frame_shape)
                if guide is not None:  # hints on a keyframe: corrections of its colour
                    guide.ab = spread(L_small[k], h_ab, mask, prior_ab=guide.ab)[0]
                else:  # the main pass spreads them again over the automatic colour of the frame
                    ab, conf = spread(L_small[k], h_ab, mask)
                    guide = Guide(i, ab, conf, f"hints of frame {i}", hints=hints[i])
            if guide is not None:
                guide.L = L_small[k].clone()
                plan._carry_back(guide, L_small[k], seg_first)
                plan.guides[i] = guide
                plan._order.append(i)
                plan._moves.clear()
                seg_first = i
        plan._publish(index + len(L_small))
    for kf in keyframes:
        f = kf.frame
        if f not in own:
            raise InputError(f"{kf.path}: keyframe for frame {f}, but the film ends before it")
        if own[f] < MIN_CORRELATION:
            c, at = best[f]
            raise InputError(f"{kf.path}: does not match frame {f} (lightness correlation {own[f]:.2f}, needs "
                             f"{MIN_CORRELATION}); the best-matching frame is {at} ({c:.2f})")
    plan._moves.clear()
    plan._publish(done=True)


def _moves(cuts: CutDetector, lum: torch.Tensor, prev_lum: torch.Tensor | None, index: int) -> dict[int, np.ndarray]:
    """For each frame t of the chunk with a previous frame: ``(3, h, w)`` float16, the flow t-1 -> t and
    the confidence of frame t-1 against t, from the flows the cut test just computed."""
    motion = cuts.motion
    if motion is None:
        return {}
    start, fw, _, bw = motion
    j = start - index
    before = torch.cat([prev_lum, lum[:-1]]) if prev_lum is not None else torch.cat([lum[:1], lum[:-1]])
    _, conf, _ = cuts.test.flow_confidence(bw, fw, before[j:], lum[j:])  # frame t-1 against frame t
    return {start + k: torch.cat([bw[k], conf[k]]).to(torch.float16).numpy() for k in range(len(bw))}
