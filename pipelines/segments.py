"""Resumable long runs: encode a film as independent segments, resume after a crash, join by remuxing.

``run_resumable`` is what ``vidcolor run --resumable`` does (and ``run`` by default for inputs of at
least ``RESUMABLE_MIN_SECONDS``, 10 minutes: below that a crash costs less than the extra join):

1. probe the input and check the output path, as ``run`` does;
2. open the work folder ``OUTPUT.vidcolor-work/`` next to the output (``workdir.py``), keeping
   what an earlier run of the same job finished;
3. restore the stages' state from the last finished segment and decode from its end (the reader's
   ``start_frame``), so the stabilizer continues exactly where it stopped and the colours do not jump;
4. stream chunks through the stages (``stream.py``) into segments of ``segment_frames`` frames,
   each a video-only NUT file from a fresh encoder (so it starts with a keyframe); a finished
   segment is renamed from ``.part``, its state saved, then the work folder's manifest rewritten;
5. join (``join.py``): remux the segments' packets into ``OUTPUT`` with the input's audio and
   subtitle streams, then delete the work folder.

NUT holds any codec and keeps a time base that divides the source's, so pts survive the round trip
exactly (Matroska would round them to milliseconds). ``encode_range`` with a ``warmup`` is also the
building block of segment-parallel runs (``split.py``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vidcolor.errors import InputError
from vidcolor.io.probe import VideoMeta, probe
from vidcolor.settings import RunSettings, make_settings
from vidcolor.stages.base import Stage, chain_output_size
from vidcolor.styles import Style

from .join import join_segments
from .paths import output_for
from .report import RunReport
from .stream import ProgressFn, bound_heap, build_stages, load_stage_states, open_writer, pick_device, stream
from .workdir import Segment, WorkFolder, job_description, save_states, work_dir_for

RESUMABLE_MIN_SECONDS = 600.0   # `run` is resumable by default from 10 minutes of video on
SEGMENT_SECONDS = 60.0          # at most this much work is lost in a crash
SEGMENT_EXT = ".nut"


def _env_seconds(name: str, default: float) -> float:
    value = os.environ.get(name)
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise InputError(f"{name}={value!r}: expected a number of seconds") from None
    if seconds <= 0:
        raise InputError(f"{name}={value!r}: must be > 0")
    return seconds


def is_long(meta: VideoMeta) -> bool:
    """Whether ``run`` should be resumable by default for this input: at least
    ``RESUMABLE_MIN_SECONDS`` long (``$VIDCOLOR_RESUMABLE_MIN_SECONDS`` overrides it)."""
    threshold = _env_seconds("VIDCOLOR_RESUMABLE_MIN_SECONDS", RESUMABLE_MIN_SECONDS)
    return meta.duration is not None and meta.duration >= threshold


def segment_frames_for(meta: VideoMeta, chunk_size: int, seconds: float | None = None) -> int:
    """Frames per segment: ``seconds`` of video (default ``$VIDCOLOR_SEGMENT_SECONDS`` or
    ``SEGMENT_SECONDS``) rounded up to whole chunks (chunks never straddle a segment boundary, so a
    resumed run cuts the film into the same chunks as an uninterrupted one)."""
    seconds = seconds or _env_seconds("VIDCOLOR_SEGMENT_SECONDS", SEGMENT_SECONDS)
    n = max(1, round(seconds * float(meta.frame_rate)))
    return -(-n // chunk_size) * chunk_size


class SegmentWriter:
    """The ``write`` of ``stream`` for a segmented run: frames go to ``work/seg-NNNNN.nut``, a fresh
    encoder for each segment; at each boundary (``cut``) the file is finished, the stages' state saved
    (``save_state``) and ``on_segment`` called. ``close`` finishes a segment the film ended in;
    ``abort`` removes the ``.part`` of an unfinished one."""

    def __init__(self, work: Path, meta: VideoMeta, settings: RunSettings, segment_frames: int,
                 cut: Callable[[int], int], stages: list[Stage], save_state: bool,
                 on_segment: Callable[[Segment], None] | None) -> None:
        self.work, self.meta, self.settings, self.segment_frames = work, meta, settings, segment_frames
        self.cut, self.stages, self.save_state, self.on_segment = cut, stages, save_state, on_segment
        self.done: list[Segment] = []
        self.warnings: list[str] = []
        self.writer: Any = None
        self.current: Segment | None = None

    def __call__(self, frames: np.ndarray, pts: list[int], index: int) -> None:
        if self.writer is None:
            key = index // self.segment_frames
            self.current = Segment(index=key, start=index, frames=0, first_pts=pts[0],
                                   file=f"seg-{key:05d}{SEGMENT_EXT}")
            height, width = chain_output_size(self.stages, self.meta.display_height, self.meta.display_width)
            self.writer = open_writer(self.settings.encoder, self.work / self.current.file, self.meta,
                                      queue_size=3, streams_from=None, tags=None, width=width, height=height)
            self.writer.__enter__()
        self.writer.write(frames, pts)
        self.current.frames += len(pts)
        if self.cut(index) == index + len(pts):  # the segment is full
            self._finish()

    def close(self) -> None:
        if self.writer is not None and self.current is not None and self.current.frames:
            self._finish()

    def abort(self, exc: BaseException) -> None:
        if self.writer is not None:
            self.writer.__exit__(type(exc), exc, exc.__traceback__)  # removes the segment's .part

    def _finish(self) -> None:
        seg = self.current
        self.writer.__exit__(None, None, None)  # flush and rename .part -> segment file
        self.warnings.extend(w for w in self.writer.warnings if w not in self.warnings)
        if self.save_state:
            seg.state = f"seg-{seg.index:05d}.state.pt"
            save_states(self.work / seg.state, self.stages)
        self.writer = None
        self.done.append(seg)
        if self.on_segment is not None:
            self.on_segment(seg)


def encode_range(input_path: str | os.PathLike, meta: VideoMeta, settings: RunSettings, work: Path,
                 segment_frames: int, *, start: int = 0, end: int | None = None, warmup: int = 0,
                 states: list[dict[str, Any]] | None = None, save_state: bool = True,
                 on_segment: Callable[[Segment], None] | None = None, progress: ProgressFn | None = None,
                 stages: list[Stage] | None = None) -> tuple[list[Segment], list[str]]:
    """Process frames ``start`` .. ``end - 1`` (to the end of the film when None) into segment files
    ``work/seg-NNNNN.nut``, one per ``segment_frames`` frames (``start`` must be on a boundary).

    ``states`` restore the stages first (resume); ``warmup`` frames before ``start`` go through the
    stages unwritten (segment-parallel). ``on_segment`` is called after each finished segment, once
    its file (and state file when ``save_state``) is in place. Returns the segments and warnings.
    """
    if start % segment_frames:
        raise ValueError(f"start frame {start} is not a multiple of the segment length {segment_frames}")
    dev = pick_device(settings.device)
    if stages is None:
        stages = build_stages(settings, dev)
    if states is not None:
        load_stage_states(stages, states, work, f"rerun with --fresh (or delete {work}) to start over")

    def boundary(i: int) -> int:
        """The first frame after ``i`` where a piece must end: the end of the warm-up or of a segment."""
        if i < start:
            return start
        b = (i // segment_frames + 1) * segment_frames
        return min(b, end) if end is not None else b

    sink = SegmentWriter(work, meta, settings, segment_frames, boundary, stages, save_state, on_segment)
    try:
        result = stream(input_path, meta, stages, dev, settings, sink, start=start, end=end, warmup=warmup,
                        cut=boundary, progress=progress)
        sink.close()
    except BaseException as exc:
        sink.abort(exc)
        raise
    warnings = sink.warnings
    warnings.extend(w for w in result.reader_warnings if w not in warnings)
    warnings.extend(result.stage_warnings)
    return sink.done, warnings


def run_resumable(input_path: str | os.PathLike, output_path: str | os.PathLike | None = None,
                  settings: RunSettings | str | Style = "noir", *, meta: VideoMeta | None = None,
                  progress: ProgressFn | None = None, segment_seconds: float | None = None,
                  segment_frames: int | None = None, **options: Any) -> RunReport:
    """``run`` in crash-safe segments; the same settings and ``RunReport`` (see the module doc).
    Call it again with the same settings after a crash to resume; ``settings.fresh`` discards what an
    earlier run left in the work folder and starts over."""
    started = time.perf_counter()
    settings = make_settings(settings, **options)
    bound_heap()
    meta = meta or probe(input_path)
    output = output_for(input_path, output_path, settings)
    n = segment_frames or segment_frames_for(meta, settings.chunk_size, segment_seconds)
    work = WorkFolder(work_dir_for(output), job_description(input_path, settings, n, "sequential"))
    if settings.fresh:
        work.clear()
    else:
        work.open()
    dev = pick_device(settings.device)
    stages = build_stages(settings, dev)
    warnings: list[str] = []
    resume_at = work.next_frame
    if work.resumed:
        warnings.append(f"resumed at frame {resume_at} ({len(work.segments)} segments were already done)")
    _, more = encode_range(input_path, meta, settings, work.path, n, start=resume_at, states=work.load_states(),
                           on_segment=work.add, progress=progress, stages=stages)
    warnings.extend(more)
    tags = settings.tags(stages)
    copied, join_warnings = join_segments(work.segments, work.path, output, meta, streams_from=input_path, tags=tags)
    warnings.extend(join_warnings)
    frames = work.next_frame
    work.remove()
    seconds = time.perf_counter() - started
    return RunReport(input=str(input_path), output=str(output), style=settings.style.name, frames=frames,
                     seconds=round(seconds, 3), fps=round((frames - resume_at) / seconds, 2) if seconds else 0.0,
                     encoder=settings.encoder.backend, codec=settings.encoder.codec, device=str(dev),
                     stages=tags["stages"], warnings=warnings, audio_packets_copied=copied, resumed_at=resume_at)
