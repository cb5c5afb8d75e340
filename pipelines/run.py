"""Run one video through a style: ``run(input, output, style) -> RunReport``.

Reads top to bottom as the steps it takes:
  1. probe the input (a broken file fails here, before anything is written);
  2. choose and check the output path (never the input; ``--overwrite`` to replace);
  3. build the style's stages on the chosen device;
  4. stream: decoder thread -> chunks of frames -> stages -> encoder thread -> ``output.part``
     (RGB frames, or the coded luma alone for monochrome styles: ``takes_grey``);
  5. rename ``output.part`` to ``output`` and return a report.
Memory is bounded by the chunk size and the two queues, not by the film's length.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from vidcolor import __version__
from vidcolor.errors import InputError
from vidcolor.io.containers import FORMATS, check_output_path
from vidcolor.io.probe import VideoMeta, probe
from vidcolor.io.reader import VideoReader
from vidcolor.io.writer_base import encoder_tag, yuv420_coding
from vidcolor.pipelines.overlap import cpu_threads_for, run_stages
from vidcolor.stages.base import Chunk, Stage, StageContext
from vidcolor.styles import Style, get_style

ENCODERS = ("pyav", "ffmpeg")
# Extensions kept for the default output name; others (webm, avi...) become .mkv, which holds
# any audio and subtitle codec and H.264.
KEEP_EXTENSIONS = {".mp4", ".mov", ".mkv", ".m4v"}

ProgressFn = Callable[[int, int | None], None]


@dataclass
class RunReport:
    input: str
    output: str
    style: str
    frames: int
    seconds: float
    fps: float
    encoder: str
    codec: str
    device: str
    stages: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    audio_packets_copied: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def default_output(input_path: str | os.PathLike, style: str) -> Path:
    """``film.mp4`` + ``noir`` -> ``film.noir.mp4`` beside the input."""
    p = Path(input_path)
    ext = p.suffix.lower() if p.suffix.lower() in KEEP_EXTENSIONS else ".mkv"
    tag = Path(style).stem if style.endswith(".toml") else style
    return p.with_name(f"{p.stem}.{tag}{ext}")


def bound_heap(threshold: int = 128 << 20, arenas: int = 2) -> None:
    """Fix glibc's mmap threshold at ``threshold`` bytes (Linux/glibc only; a no-op elsewhere).

    glibc's default threshold moves: it rises after the first large frees, and then the chunks of
    frames (tens of MB each) come from a heap that fragments, so peak RSS crept up with the length
    of the film (+14-24 % for a 10x longer clip). A fixed 4 MB threshold kept it flat but gave every
    frame-sized buffer its own mmap, so each chunk page-faulted its memory in afresh: 8 s of system
    time for 240 frames of ``--style colorize`` (854x480), 14 -> 21 frames/s when the threshold is
    128 MB and the buffers are reused. :func:`trim_heap`, called every few chunks, gives the freed
    pages back, and at most ``arenas`` malloc arenas (one per thread by default: the decoder, each
    stage and the encoder would each keep its own free memory) keep the reused heap flat: measured
    with 4-frame chunks, 480 frames of ``--style colorize`` peak 1.19 GB against 1.12 GB for 48.
    """
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


_LIBC = None
TRIM_EVERY = 16  # chunks between trim_heap() calls
_HEAP_BOUNDED = False


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


def to_tensor(frames: np.ndarray, device: torch.device) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, 3, H, W) float32 in [0, 1] on ``device``. To a GPU the uint8
    frames go through pinned (page-locked) memory, so the copy is asynchronous (non_blocking)."""
    if device.type == "cpu" and frames.dtype == np.uint8 and frames.ndim == 4 and frames.flags.c_contiguous:
        # the same float32 values as torch's convert-then-divide, 2x faster; 2x (OpenCV 4.x) to 6x
        # (5.x) faster than a scaled cv2.multiply
        out = np.divide(frames, np.float32(255), dtype=np.float32)
        return torch.from_numpy(out).permute(0, 3, 1, 2)  # channels-last memory
    t = torch.from_numpy(frames)
    if device.type == "cuda":
        t = t.pin_memory()
    t = t.to(device, non_blocking=True)
    return t.permute(0, 3, 1, 2).float().div_(255)


def takes_uint8(stages: list[Stage], device: torch.device) -> bool:
    """True when every stage takes the decoded 8-bit frames as they are (``accepts_uint8``, e.g.
    the noir and sepia grades): the run then skips the uint8 -> float -> uint8 conversions."""
    return device.type == "cpu" and bool(stages) and all(getattr(s, "accepts_uint8", False) for s in stages)


def takes_grey(stages: list[Stage], device: torch.device) -> bool:
    """True when every stage needs only the luma of its input (``accepts_grey``: the noir grade, the
    Colorize stage on CPU): the run then decodes only the coded Y' plane (``vidcolor.io.grey``), and
    the stages give grey frames (noir: encoded with neutral chroma), or yuv420p planes when the
    writer takes them (``Chunk.yuv``; Colorize), or RGB: no RGB conversion on the way in, and
    none on the way out unless a stage gives RGB."""
    return device.type == "cpu" and bool(stages) and all(getattr(s, "accepts_grey", False) for s in stages)


@dataclass(frozen=True)
class FramePlan:
    """How frames travel through a run, decided once from its stages and its writer: ``grey``, the
    reader decodes luma only; ``uint8``, the stages get 8-bit frames (no float conversion); ``yuv``,
    the coding the writer takes yuv420p planes in (``Chunk.yuv``) or None."""

    grey: bool
    uint8: bool
    yuv: tuple[int, bool] | None


def frame_plan(stages: list[Stage], device: torch.device, encoder: str, codec: str, pix_fmt: str | None,
               meta: VideoMeta) -> FramePlan:
    grey = takes_grey(stages, device)
    # yuv420p planes only from the last stage (they go to the writer, no stage reads them)
    yuv = yuv420_coding(encoder, codec, pix_fmt, meta) if grey and len(stages) == 1 else None
    return FramePlan(grey=grey, uint8=grey or takes_uint8(stages, device), yuv=yuv)


def frames_in(frames: np.ndarray, device: torch.device, uint8: bool) -> torch.Tensor:
    """Decoded (T, H, W, C) uint8 -> the stages' input: float (``to_tensor``) or, when ``uint8``, a
    (T, C, H, W) uint8 view of the same memory (C = 1 for a grey reader)."""
    return torch.from_numpy(frames).permute(0, 3, 1, 2) if uint8 else to_tensor(frames, device)


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """(T, 3, H, W) float in [0, 1] -> (T, H, W, 3) uint8 (rounded to nearest, saturated).

    CPU float32 frames go through OpenCV: channels-last frames (what the OpenCV colour paths
    give) are converted in place of the transposing copy, planar ones interleaved by
    ``cv2.merge`` first (854x480: ~0.1-0.3 ms a frame instead of 1-3 ms in torch)."""
    frames = frames.detach()
    if frames.dtype == torch.uint8:  # a uint8 path (``frames_in``): a view back, copied only if planar
        return frames.permute(0, 2, 3, 1).contiguous().cpu().numpy()
    if frames.device.type == "cpu" and frames.dtype == torch.float32 and frames.dim() == 4 and frames.shape[1] == 3:
        import cv2

        from vidcolor.color import to_uint8_cv2

        n, _, h, w = frames.shape
        out = np.empty((n, h, w, 3), np.uint8)
        hwc = frames.permute(0, 2, 3, 1)
        src = hwc.numpy() if hwc.is_contiguous() else None
        planes = frames.contiguous().numpy() if src is None else None
        tmp = np.empty((h, w, 3), np.float32)
        for i in range(n):
            if src is None:
                cv2.merge([planes[i, 0], planes[i, 1], planes[i, 2]], dst=tmp)
            to_uint8_cv2(tmp if src is None else src[i], out[i])
        return out
    x = frames.float().mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).contiguous().cpu().numpy()


@contextmanager
def intra_op_threads(stages: list[Stage], device: torch.device) -> Iterator[None]:
    """Torch's and OpenCV's intra-op thread counts for a CPU run with these stages
    (``overlap.cpu_threads_for``), restored afterwards. OpenCV's own pool (one worker per core)
    competed with the decoder, encoder and stage threads: ``--style colorize`` at 854x480 used
    34.1 ms of CPU a frame with it and 32.0 ms with one OpenCV thread per calling thread
    (47 -> 49 frames/s on the bench clip)."""
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


def open_writer(encoder: str, output: Path, meta: VideoMeta, **kwargs: Any):
    if encoder == "pyav":
        from vidcolor.io.writer import VideoWriter

        return VideoWriter(output, meta, **kwargs)
    if encoder == "ffmpeg":
        from vidcolor.io.ffmpeg_writer import FFmpegWriter

        return FFmpegWriter(output, meta, **kwargs)
    raise InputError(f"unknown encoder {encoder!r} (use {' or '.join(ENCODERS)})")


def run(input_path: str | os.PathLike, output_path: str | os.PathLike | None = None, style: str | Style = "noir", *,
        overrides: dict[str, Any] | None = None, device: str | None = None, overwrite: bool = False,
        encoder: str = "pyav", codec: str = "libx264", crf: int | None = 18, pix_fmt: str | None = None,
        encoder_options: dict[str, str] | None = None, chunk_size: int = 4,
        progress: ProgressFn | None = None, quiet: bool = True, resumable: bool | None = None,
        allow_truncated: bool = False, fresh: bool = False) -> RunReport:
    """Colorize or stylize ``input_path`` into ``output_path`` with ``style``; see the module docstring.

    ``resumable``: write crash-safe segments and resume them on the next call (``pipelines/segments.py``);
    None turns it on for inputs of at least ``segments.RESUMABLE_MIN_SECONDS`` (10 minutes); ``fresh``
    makes a resumable run discard the work folder of an earlier one and start over. ``allow_truncated``: encode what decodes
    of a damaged input, with a warning, instead of failing (``VideoReader``)."""
    started = time.perf_counter()
    bound_heap()
    # 1. probe: missing, empty, corrupt, audio-only files fail here with a one-line VideoError.
    meta = probe(input_path)
    if resumable is not False:
        from vidcolor.pipelines import segments  # imported here: segments imports this module

        if resumable or segments.is_long(meta):
            return segments.run_resumable(input_path, output_path, style, meta=meta, overrides=overrides,
                                          device=device, overwrite=overwrite, encoder=encoder, codec=codec, crf=crf,
                                          pix_fmt=pix_fmt, encoder_options=encoder_options, chunk_size=chunk_size,
                                          progress=progress, allow_truncated=allow_truncated, fresh=fresh)
    # 2. output path
    style_obj = style if isinstance(style, Style) else get_style(style)
    output = Path(output_path) if output_path else default_output(input_path, style_obj.name)
    output = check_output_path(input_path, output, overwrite)
    if output.suffix.lower() not in FORMATS:
        raise InputError(f"{output}: unsupported output extension")
    # 3. stages
    dev = pick_device(device)
    stages = style_obj.build(StageContext(device=dev, overrides=dict(overrides or {})))
    settings = [s.describe() for s in stages]
    tags = {"version": __version__, "style": style_obj.name, "stages": settings,
            "encoder": encoder_tag(encoder, codec, crf, encoder_options)}
    # 4. stream
    frames_done = 0
    plan = frame_plan(stages, dev, encoder, codec, pix_fmt, meta)
    with VideoReader(input_path, meta=meta, queue_size=2 * chunk_size, grey=plan.grey,
                     allow_truncated=allow_truncated) as reader, \
            open_writer(encoder, output, meta, codec=codec, crf=crf, pix_fmt=pix_fmt, options=encoder_options, queue_size=3,
                        streams_from=input_path, tags=tags) as writer:

        def chunks() -> Iterator[Chunk]:
            for fc in reader.chunks(chunk_size):
                x = frames_in(fc.frames, dev, plan.uint8)
                yield Chunk(frames=x, index=fc.index, pts=fc.pts, source=x, yuv=plan.yuv)

        with torch.inference_mode(), intra_op_threads(stages, dev):
            for out in run_stages(stages, chunks()):
                writer.write(to_uint8(out.frames), out.pts)
                frames_done += len(out)
                if (out.index // chunk_size) % TRIM_EVERY == TRIM_EVERY - 1:
                    trim_heap()
                if progress is not None:
                    progress(frames_done, meta.frame_count)
    # 5. the writer renamed output.part -> output when its context closed without error
    seconds = time.perf_counter() - started
    warnings = list(reader.warnings) + list(writer.warnings)
    for s in stages:
        warnings.extend(getattr(s, "warnings", []) or [])
    return RunReport(input=str(input_path), output=str(output), style=style_obj.name, frames=frames_done,
                     seconds=round(seconds, 3), fps=round(frames_done / seconds, 2) if seconds else 0.0,
                     encoder=encoder, codec=codec, device=str(dev), stages=settings, warnings=warnings,
                     audio_packets_copied=writer.packets_copied)
