"""The streaming core every run uses: decode -> stages -> encode for a range of frames.

``stream(...)`` decodes frames in a background thread (``VideoReader``), converts each chunk to
what the stages take (``frames.FramePlan``), runs the stages in threads of their own
(``overlap.run_stages``) and hands each output chunk, as uint8 frames, to a ``write`` callback.
Plain runs pass their writer's ``write``; resumable and segment-parallel runs pass a sink that cuts
the film into segment files (``segments.py``). Stage state goes in and out with
``load_stage_states`` and ``stage_states``. Memory is bounded by the chunk size and the queues, not
by the length of the film.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidcolor.errors import InputError, ProcessingError
from vidcolor.io.probe import VideoMeta
from vidcolor.io.reader import FrameChunk, VideoReader
from vidcolor.settings import ENCODERS, EncoderSettings, RunSettings
from vidcolor.stages.base import Chunk, Stage

from .frames import frame_plan, frames_in, to_uint8
from .overlap import cpu_threads_for, run_stages

ProgressFn = Callable[[int, int | None], None]
# write(frames (T, H, W, 3) uint8, pts, index of the first frame)
WriteFn = Callable[[np.ndarray, list[int], int], None]

_LIBC = None
TRIM_EVERY = 16  # chunks between trim_heap() calls
_HEAP_BOUNDED = False


def bound_heap(threshold: int = 128 << 20, arenas: int = 2) -> None:
    """Fix glibc's mmap threshold at ``threshold`` bytes and use at most ``arenas`` malloc arenas
    (Linux/glibc only; a no-op elsewhere).

    glibc's default threshold rises after the first large frees, and the chunks of frames (tens of
    MB each) then come from a heap that fragments, so peak memory grows with the length of the film.
    A threshold above a chunk's size keeps frame buffers on the heap, where they are reused instead
    of page-faulted in afresh; :func:`trim_heap`, called every ``TRIM_EVERY`` chunks, returns the
    freed pages, and few arenas stop every thread (decoder, stages, encoder) keeping its own free
    memory. ``docs/benchmarks.md`` has the peak memory of short and long runs."""
    global _HEAP_BOUNDED, _LIBC
    if _HEAP_BOUNDED or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8  # malloc.h
        libc.mallopt(M_MMAP_THRESHOLD, int(threshold))
        libc.mallopt(M_ARENA_MAX, int(arenas))
        _HEAP_BOUNDED, _LIBC = True, libc
    except (OSError, AttributeError):
        pass


def trim_heap() -> None:
    """``malloc_trim(0)``: return free heap pages to the system (after :func:`bound_heap`)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def pick_device(name: str | None) -> torch.device:
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise InputError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA GPU is available on this machine")
    return dev


@contextmanager
def intra_op_threads(stages: list[Stage], device: torch.device) -> Iterator[None]:
    """Torch's and OpenCV's intra-op thread counts for a CPU run with these stages
    (``overlap.cpu_threads_for``), restored afterwards: OpenCV's own pool (one worker per core)
    would compete with the decoder, encoder and stage threads."""
    import cv2

    saved, saved_cv = torch.get_num_threads(), cv2.getNumThreads()
    want = cpu_threads_for(len(stages)) if device.type == "cpu" else saved
    want = min(want, saved)
    if want != saved:
        torch.set_num_threads(want)
    if device.type == "cpu":
        cv2.setNumThreads(want)
    try:
        yield
    finally:
        if torch.get_num_threads() != saved:
            torch.set_num_threads(saved)
        cv2.setNumThreads(saved_cv)


def open_writer(encoder: EncoderSettings, output: Path, meta: VideoMeta, **kwargs: Any):
    """The writer of ``encoder.backend`` for ``output`` (``VideoWriter`` or ``FFmpegWriter``); it
    writes ``output.part`` and renames it when its context closes without error."""
    if encoder.backend == "pyav":
        from vidcolor.io.writer import VideoWriter

        return VideoWriter(output, meta, **encoder.writer_kwargs(), **kwargs)
    if encoder.backend == "ffmpeg":
        from vidcolor.io.ffmpeg_writer import FFmpegWriter

        return FFmpegWriter(output, meta, **encoder.writer_kwargs(), **kwargs)
    raise InputError(f"unknown encoder {encoder.backend!r} (use {' or '.join(ENCODERS)})")


def build_stages(settings: RunSettings, device: torch.device) -> list[Stage]:
    """The style's stages on ``device``, reading the settings' overrides."""
    from vidcolor.stages.base import StageContext

    return settings.style.build(StageContext(device=device, overrides=dict(settings.overrides)))


def stage_states(stages: list[Stage]) -> list[dict[str, Any]]:
    """Every stage's ``state_dict()`` (tensors): what a resumed run restores."""
    return [s.state_dict() for s in stages]


def load_stage_states(stages: list[Stage], states: Any, where: Path, hint: str) -> None:
    """Restore ``stage_states`` into ``stages``; a list that does not fit is a ``ProcessingError``
    naming ``where`` (the saved state) and ``hint`` (how to start over)."""
    if not isinstance(states, list) or len(states) != len(stages):
        n = len(states) if isinstance(states, list) else "no list of"
        raise ProcessingError(f"{where}: saved state has {n} stages, the style has {len(stages)}; {hint}")
    for stage, sd in zip(stages, states):
        try:
            stage.load_state_dict(sd)
        except (RuntimeError, KeyError, ValueError, TypeError, AttributeError) as exc:
            raise ProcessingError(f"{where}: saved state does not fit the {type(stage).__name__} stage "
                                  f"({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__}); "
                                  f"{hint}") from None


def stage_warnings(stages: list[Stage]) -> list[str]:
    return [w for s in stages for w in s.warnings]


def with_ahead(chunks: Iterable[FrameChunk], count: int) -> Iterator[tuple[FrameChunk, np.ndarray | None]]:
    """Each chunk with the first ``count`` frames that follow it (copied from the next chunks; fewer
    at the end of the film; None when ``count`` is 0). Holds back one chunk, or more when the chunks
    are shorter than ``count``."""
    if count <= 0:
        for fc in chunks:
            yield fc, None
        return
    pending: list[FrameChunk] = []
    for fc in chunks:
        pending.append(fc)
        while pending and sum(len(p) for p in pending[1:]) >= count:
            yield pending[0], _first_frames(pending[1:], count)
            pending.pop(0)
    while pending:
        yield pending[0], _first_frames(pending[1:], count)
        pending.pop(0)


def _first_frames(chunks: list[FrameChunk], count: int) -> np.ndarray | None:
    parts = [fc.frames for fc in chunks if len(fc)]
    if not parts:
        return None
    return np.ascontiguousarray(np.concatenate(parts)[:count])


def split_chunks(chunks: Iterable[FrameChunk], cut: Callable[[int], int]) -> Iterator[FrameChunk]:
    """Cut chunks so none straddles a boundary; ``cut(i)`` is the first boundary after frame ``i``."""
    for fc in chunks:
        while len(fc):
            b = cut(fc.index)  # at or before the piece: past the last boundary (the frames read ahead)
            n = min(len(fc), b - fc.index) if b > fc.index else len(fc)
            yield FrameChunk(fc.frames[:n], fc.index, fc.pts[:n])
            fc = FrameChunk(fc.frames[n:], fc.index + n, fc.pts[n:])


@dataclass
class StreamResult:
    """What ``stream`` did: frames written, and the warnings of the reader and of the stages."""

    frames: int = 0
    reader_warnings: list[str] = field(default_factory=list)
    stage_warnings: list[str] = field(default_factory=list)


def stream(input_path: str | Path, meta: VideoMeta, stages: list[Stage], device: torch.device,
           settings: RunSettings, write: WriteFn, *, start: int = 0, end: int | None = None, warmup: int = 0,
           cut: Callable[[int], int] | None = None, progress: ProgressFn | None = None) -> StreamResult:
    """Decode frames ``start - warmup`` .. ``end - 1`` (to the end of the film when None), run them
    through ``stages`` and pass frames ``start`` on to ``write``; the ``warmup`` frames only feed the
    stages' temporal state. With ``cut`` (``cut(i)``: the first boundary after frame ``i``), chunks
    are split at the boundaries and the stages drained at each one, so their state after a write
    that ends at a boundary is their state after that frame. ``progress(frames through, total)``."""
    enc = settings.encoder
    plan = frame_plan(stages, device, enc.backend, enc.codec, enc.pix_fmt, meta)
    result = StreamResult()
    if any(s.inspects_input for s in stages):
        from vidcolor.io.sample import sample_frames

        sample = sample_frames(input_path, meta)
        for s in stages:
            if s.inspects_input:
                s.inspect_input(sample)
    prepared = [s for s in stages if s.prepares_input]
    try:
        for s in prepared:
            s.prepare_input(input_path, meta, settings.allow_truncated)
        _stream(input_path, meta, stages, device, settings, write, plan, result, start, end, warmup, cut, progress)
    finally:
        for s in prepared:
            s.release()
    return result


def _stream(input_path: str | Path, meta: VideoMeta, stages: list[Stage], device: torch.device, settings: RunSettings,
            write: WriteFn, plan: Any, result: StreamResult, start: int, end: int | None, warmup: int,
            cut: Callable[[int], int] | None, progress: ProgressFn | None) -> None:
    """The decode -> stages -> write loop of :func:`stream`, after the stages' preparations."""
    chunk_size = settings.chunk_size
    with VideoReader(input_path, meta=meta, start_frame=max(0, start - warmup), queue_size=2 * chunk_size,
                     grey=plan.grey, allow_truncated=settings.allow_truncated) as reader, \
            torch.inference_mode(), intra_op_threads(stages, device):
        pieces: Iterable[FrameChunk] = reader.chunks(chunk_size)
        if cut is not None:
            pieces = split_chunks(pieces, cut)
        # the frames after each piece are read before ``end`` cuts the film short: a segment's last
        # frames see what the whole run would
        paired: Iterable[tuple[FrameChunk, np.ndarray | None]] = with_ahead(pieces, max((s.lookahead for s in stages), default=0))
        if end is not None:
            paired = itertools.takewhile(lambda p: p[0].index < end, paired)
        groups = [paired] if cut is None else (g for _, g in itertools.groupby(paired, key=lambda p: cut(p[0].index)))

        def as_chunks(group: Iterable[tuple[FrameChunk, np.ndarray | None]]) -> Iterator[Chunk]:
            for fc, ahead in group:
                x = frames_in(fc.frames, device, plan.uint8)
                nxt = None if ahead is None else frames_in(ahead, device, plan.uint8)
                yield Chunk(frames=x, index=fc.index, pts=fc.pts, source=x, yuv=plan.yuv, ahead=nxt)

        for group in groups:
            for out in run_stages(stages, as_chunks(group)):
                if out.index < start:
                    continue  # warm-up frames
                write(to_uint8(out.frames), out.pts, out.index)
                result.frames += len(out)
                if (out.index // chunk_size) % TRIM_EVERY == TRIM_EVERY - 1:
                    trim_heap()
                if progress is not None:
                    progress(out.index + len(out), meta.frame_count)
    result.reader_warnings = list(reader.warnings)
    result.stage_warnings = stage_warnings(stages)
