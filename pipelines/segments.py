"""Resumable long runs: encode a film as independent segments, resume after a crash, join by remuxing.

``run_resumable`` is what ``vidcolor run --resumable`` does (and ``run`` by default for inputs of at
least ``RESUMABLE_MIN_SECONDS``, 10 minutes: below that a crash costs less than the extra join):

1. probe the input and check the output path, as ``run`` does;
2. open the work folder ``OUTPUT.vidcolor-work/`` next to the output. Its manifest
   (``segments.json``) lists the finished segments: frame range, first pts, file, and the state of
   every stage at the segment's end (``seg-NNNNN.state.pt``, tensors, loaded with
   ``weights_only=True``). A manifest written for another input or other settings is discarded, and
   files it does not list (a ``.part`` left by a crash) are removed;
3. restore the stages' state from the last finished segment and decode from its end (the reader's
   ``start_frame``), so the stabilizer continues exactly where it stopped and the colours do not jump;
4. stream chunks through the stages into segments of ``segment_frames`` frames, each a video-only
   NUT file from a fresh encoder (so it starts with a keyframe); a finished segment is renamed from
   ``.part``, its state saved, then the manifest rewritten atomically: the manifest is the truth;
5. join: remux the segments' packets (no re-encode) into ``OUTPUT.part`` with the input's audio and
   subtitle streams, the source pts restored, then rename it to ``OUTPUT`` and delete the work folder.

NUT holds any codec and keeps a time base that divides the source's, so pts survive the round trip
exactly (Matroska would round them to milliseconds). NUT shifts timestamps to make decode times
non-negative and stores no decode times for the first packets; ``join_segments`` undoes the shift
(it knows each segment's first source pts) and rebuilds the missing decode times.

``encode_range`` with a ``warmup`` is the building block of segment-parallel processing
(``run_split``; the Ray executor runs its jobs as tasks): each job decodes a few frames before its
first frame and runs them through the stages without writing them, so temporal state is warm and
the join shows no seam.
"""

from __future__ import annotations

import itertools
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import torch

from vidcolor import __version__
from vidcolor.errors import InputError, ProcessingError
from vidcolor.io.containers import (
    FORMATS,
    check_output_path,
    output_format,
    output_metadata,
    part_path,
    video_codec_tag,
    work_dir_path,
)
from vidcolor.io.probe import VideoMeta, probe
from vidcolor.io.reader import FrameChunk, VideoReader
from vidcolor.io.writer_base import encoder_tag
from vidcolor.stages.base import Chunk, Stage, StageContext
from vidcolor.styles import Style, get_style

from .manifest import atomic_write_json, fingerprint, settings_hash, settings_signature
from .overlap import run_stages

RESUMABLE_MIN_SECONDS = 600.0   # `run` is resumable by default from 10 minutes of video on
SEGMENT_SECONDS = 60.0          # at most this much work is lost in a crash
# Frames a segment-parallel job runs through the stages before its first frame. The stabilizer's
# memory of the past decays like strength**n (0.6**16 < 1/255): after 16 frames the warm state is
# indistinguishable from the sequential one in 8-bit output.
WARMUP_FRAMES = 16
MANIFEST_NAME = "segments.json"
FORMAT = "vidcolor-segments/1"
SEGMENT_EXT = ".nut"

ProgressFn = Callable[[int, int | None], None]


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


def work_dir_for(output: str | os.PathLike) -> Path:
    """``film.mp4`` -> ``film.mp4.vidcolor-work``: the work folder beside the output (``WORK_SUFFIX``)."""
    return work_dir_path(output)


def segment_frames_for(meta: VideoMeta, chunk_size: int, seconds: float | None = None) -> int:
    """Frames per segment: ``seconds`` of video (default ``$VIDCOLOR_SEGMENT_SECONDS`` or
    ``SEGMENT_SECONDS``) rounded up to whole chunks (chunks never straddle a segment boundary, so a
    resumed run cuts the film into the same chunks as an uninterrupted one)."""
    seconds = seconds or _env_seconds("VIDCOLOR_SEGMENT_SECONDS", SEGMENT_SECONDS)
    n = max(1, round(seconds * float(meta.frame_rate)))
    return -(-n // chunk_size) * chunk_size


@dataclass
class Segment:
    """A finished segment: frames ``start`` .. ``start + frames - 1`` in ``file`` (relative to the
    work folder); ``first_pts`` is the source pts of its first frame; ``state`` the stage-state file."""

    index: int
    start: int
    frames: int
    first_pts: int
    file: str
    state: str | None = None

    @property
    def end(self) -> int:
        return self.start + self.frames


@dataclass
class EncodeSettings:
    """Everything besides the input that decides the output; picklable, for worker processes."""

    style: Style
    overrides: dict[str, Any] = field(default_factory=dict)
    device: str | None = None
    encoder: str = "pyav"
    codec: str = "libx264"
    crf: int | None = 18
    pix_fmt: str | None = None
    encoder_options: dict[str, str] = field(default_factory=dict)
    chunk_size: int = 4
    allow_truncated: bool = False

    def signature(self) -> dict[str, Any]:
        """What changes the pictures or the encoding (not the device, chunk size or ``allow_truncated``)."""
        return settings_signature(self.style, self.overrides, self.encoder, self.codec, self.crf, self.pix_fmt,
                                  self.encoder_options)

    def tags(self, stages: list[Stage]) -> dict[str, Any]:
        return {"version": __version__, "style": self.style.name, "stages": [s.describe() for s in stages],
                "encoder": encoder_tag(self.encoder, self.codec, self.crf, self.encoder_options)}


# -- the work folder ---------------------------------------------------------------------------------
class WorkFolder:
    """``OUTPUT.vidcolor-work/``: finished segments, their end states, and ``segments.json``."""

    def __init__(self, path: Path, job: dict[str, Any]) -> None:
        self.path = Path(path)
        self.job = job
        self.key = settings_hash(job)
        self.segments: list[Segment] = []
        self.resumed = False

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST_NAME

    def open(self) -> WorkFolder:
        """Load what a previous run finished (when it was the same job) and remove everything else."""
        import json

        self.path.mkdir(parents=True, exist_ok=True)
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        if isinstance(data, dict) and data.get("format") == FORMAT and data.get("key") == self.key:
            for raw in data.get("segments", []):
                try:
                    seg = Segment(**raw)
                except TypeError:  # written by another version: redo from there
                    break
                # keep the unbroken run of segments from frame 0 whose files are all there
                expected_start = self.segments[-1].end if self.segments else 0
                if seg.start != expected_start or not (self.path / seg.file).is_file() or (
                        seg.state and not (self.path / seg.state).is_file()):
                    break
                self.segments.append(seg)
        self.resumed = bool(self.segments)
        keep = {MANIFEST_NAME} | {s.file for s in self.segments} | {s.state for s in self.segments if s.state}
        for f in self.path.iterdir():
            if f.name in keep:
                continue
            if f.is_dir():  # nothing of ours; never left behind by a crash
                shutil.rmtree(f)
            else:  # stale .part files, segments never recorded, another job's segments
                f.unlink(missing_ok=True)
        self.save()
        return self

    def clear(self) -> None:
        """Forget every segment (segment-parallel runs start from scratch)."""
        self.segments = []
        if self.path.exists():
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True)
        self.save()

    def save(self) -> None:
        atomic_write_json(self.manifest_path, {"format": FORMAT, "key": self.key, "job": self.job,
                                               "segments": [asdict(s) for s in self.segments]})

    @property
    def next_frame(self) -> int:
        return self.segments[-1].end if self.segments else 0

    def add(self, seg: Segment) -> None:
        self.segments.append(seg)
        self.segments.sort(key=lambda s: s.start)
        self.save()

    def load_states(self) -> list[dict[str, Any]] | None:
        """The stages' state saved with the last finished segment (tensors only: ``weights_only``)."""
        last = self.segments[-1] if self.segments else None
        if last is None or last.state is None:
            return None
        path = self.path / last.state
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001  (zip, pickle and torch errors alike mean a damaged file)
            reason = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
            raise ProcessingError(f"{path}: unreadable saved state ({reason[:120]}); {self.restart_hint}") from None

    @property
    def restart_hint(self) -> str:
        return f"rerun with --fresh (or delete {self.path}) to start over"

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def save_states(path: Path, stages: list[Stage]) -> None:
    """``torch.save`` of every stage's ``state_dict()`` (tensors), written atomically."""
    tmp = path.with_name(path.name + ".part")
    torch.save([s.state_dict() for s in stages], tmp)
    os.replace(tmp, path)


def job_description(input_path: str | os.PathLike, settings: EncodeSettings, segment_frames: int,
                    mode: str) -> dict[str, Any]:
    """Identity of a resumable job: the input file as it is now, the settings and the segmentation."""
    st = Path(input_path).stat()
    return {"input": str(Path(input_path).resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "fingerprint": fingerprint(input_path, st.st_size), "settings": settings.signature(),
            "segment_frames": segment_frames, "mode": mode}


# -- encoding a range of frames into segments ---------------------------------------------------------
def _split(chunks: Iterable[FrameChunk], cuts: Callable[[int], int]) -> Iterator[FrameChunk]:
    """Cut chunks so none straddles a boundary; ``cuts(i)`` is the first boundary after frame ``i``."""
    for fc in chunks:
        while len(fc):
            n = min(len(fc), cuts(fc.index) - fc.index)
            yield FrameChunk(fc.frames[:n], fc.index, fc.pts[:n])
            fc = FrameChunk(fc.frames[n:], fc.index + n, fc.pts[n:])


def encode_range(input_path: str | os.PathLike, meta: VideoMeta, settings: EncodeSettings, work: Path,
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
    from vidcolor.pipelines.run import frame_plan, frames_in, intra_op_threads, open_writer, pick_device, to_uint8

    if start % segment_frames:
        raise ValueError(f"start frame {start} is not a multiple of the segment length {segment_frames}")
    dev = pick_device(settings.device)
    if stages is None:
        stages = settings.style.build(StageContext(device=dev, overrides=dict(settings.overrides)))
    if states is not None:
        hint = f"rerun with --fresh (or delete {work}) to start over"
        if not isinstance(states, list) or len(states) != len(stages):
            n = len(states) if isinstance(states, list) else "no list of"
            raise ProcessingError(f"{work}: saved state has {n} stages, the style has {len(stages)}; {hint}")
        for stage, sd in zip(stages, states):
            try:
                stage.load_state_dict(sd)
            except (RuntimeError, KeyError, ValueError, TypeError, AttributeError) as exc:
                raise ProcessingError(f"{work}: saved state does not fit the {type(stage).__name__} stage "
                                      f"({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__}); "
                                      f"{hint}") from None
    first = max(0, start - warmup)

    def boundary(i: int) -> int:
        """The first frame after ``i`` where a piece must end: the end of the warm-up or of a segment."""
        if i < start:
            return start
        b = (i // segment_frames + 1) * segment_frames
        return min(b, end) if end is not None else b

    done: list[Segment] = []
    warnings: list[str] = []
    writer = current = None
    try:
        plan = frame_plan(stages, dev, settings.encoder, settings.codec, settings.pix_fmt, meta)
        with VideoReader(input_path, meta=meta, start_frame=first, queue_size=2 * settings.chunk_size,
                         grey=plan.grey, allow_truncated=settings.allow_truncated) as reader, torch.inference_mode(), intra_op_threads(stages, dev):
            pieces = _split(reader.chunks(settings.chunk_size), boundary)
            if end is not None:
                pieces = itertools.takewhile(lambda fc: fc.index < end, pieces)


            def piece_key(fc: FrameChunk) -> int:
                return -1 if fc.index < start else fc.index // segment_frames

            def as_chunks(group: Iterable[FrameChunk]) -> Iterator[Chunk]:
                for fc in group:
                    x = frames_in(fc.frames, dev, plan.uint8)
                    yield Chunk(frames=x, index=fc.index, pts=fc.pts, source=x, yuv=plan.yuv)

            # The stages run in threads of their own (overlap.run_stages), drained at every segment
            # boundary: the state saved with a segment is the stages' state after its last frame.
            for key, group in itertools.groupby(pieces, key=piece_key):
                for out in run_stages(stages, as_chunks(group)):
                    if key < 0:
                        continue  # warm-up frames: they only feed the stages' temporal state
                    if writer is None:
                        current = Segment(index=key, start=out.index, frames=0, first_pts=out.pts[0],
                                          file=f"seg-{key:05d}{SEGMENT_EXT}")
                        writer = open_writer(settings.encoder, work / current.file, meta, codec=settings.codec,
                                             crf=settings.crf, pix_fmt=settings.pix_fmt,
                                             options=settings.encoder_options, queue_size=3, streams_from=None,
                                             tags=None)
                        writer.__enter__()
                    writer.write(to_uint8(out.frames), out.pts)
                    current.frames += len(out)
                    if progress is not None:
                        progress(out.index + len(out), meta.frame_count)
                    if boundary(out.index) == out.index + len(out):  # the segment is full
                        _finish(writer, current, work, stages, save_state, warnings)
                        writer = None
                        done.append(current)
                        if on_segment is not None:
                            on_segment(current)
        if writer is not None and current is not None and current.frames:  # the film ended mid-segment
            _finish(writer, current, work, stages, save_state, warnings)
            writer = None
            done.append(current)
            if on_segment is not None:
                on_segment(current)
    except BaseException as exc:
        if writer is not None:
            writer.__exit__(type(exc), exc, exc.__traceback__)  # removes the segment's .part
        raise
    warnings.extend(w for w in reader.warnings if w not in warnings)
    for s in stages:
        warnings.extend(getattr(s, "warnings", []) or [])
    return done, warnings


def _finish(writer: Any, seg: Segment, work: Path, stages: list[Stage], save_state: bool,
            warnings: list[str]) -> None:
    writer.__exit__(None, None, None)  # flush and rename .part -> segment file
    for w in writer.warnings:
        if w not in warnings:
            warnings.append(w)
    if save_state:
        seg.state = f"seg-{seg.index:05d}.state.pt"
        save_states(work / seg.state, stages)


# -- joining --------------------------------------------------------------------------------------------
def _segment_packets(path: Path, first_pts: int, time_base: Fraction) -> Iterator[av.Packet]:
    """The video packets of one segment with pts/dts back in the source time base (see module doc)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        stamps = [(p.pts, p.dts) for p in c.demux(s) if p.size]
    if not stamps:
        return
    tb = Fraction(s.time_base)
    pts_sorted = sorted(p for p, _ in stamps)
    step = min((b - a for a, b in zip(pts_sorted, pts_sorted[1:]) if b > a), default=1)
    known = next((i for i, (_, d) in enumerate(stamps) if d is not None), None)
    offset = pts_sorted[0] * tb - first_pts * time_base  # the muxer's shift, in seconds
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        i = 0
        for p in c.demux(s):
            if not p.size:
                continue
            dts = p.dts
            if dts is None:  # NUT stores no dts for the packets before the decoder's delay
                dts = stamps[known][1] - (known - i) * step if known is not None else p.pts
            p.pts = round((p.pts * tb - offset) / time_base)
            p.dts = round((dts * tb - offset) / time_base)
            # durations too: left in the segment's time base they state a longer film than the frames hold
            p.duration = round(p.duration * tb / time_base) if p.duration else 0
            p.time_base = time_base
            i += 1
            yield p


def join_segments(segments: list[Segment], work: Path, output: Path, meta: VideoMeta, *,
                  streams_from: str | os.PathLike | None, tags: dict[str, Any] | None = None) -> tuple[int, list[str]]:
    """Remux ``segments`` (in order) into ``output`` via ``output.part``, copying the audio and
    subtitle streams of ``streams_from``. No re-encode. Returns (audio/subtitle packets copied, warnings)."""
    # _CopyStreams is the writer's own audio/subtitle copier: the same codec rules (copy, or transcode
    # when the container cannot hold the codec) and the same time interleaving as a plain run.
    from vidcolor.io.writer import _CopyStreams

    if not segments:
        raise ProcessingError(f"{output}: no frames were decoded, nothing to join")
    fmt = output_format(output)
    part = part_path(output)
    part.unlink(missing_ok=True)
    opts = {"movflags": "+faststart+use_metadata_tags"} if fmt in ("mp4", "mov") else {}
    warnings: list[str] = []
    oc = av.open(str(part), mode="w", format=fmt, options=opts)
    try:
        with av.open(str(work / segments[0].file)) as first:
            ostream = oc.add_stream_from_template(first.streams.video[0])
        ostream.time_base = meta.time_base
        if codec_tag := video_codec_tag(fmt, ostream.codec_context.name):
            ostream.codec_context.codec_tag = codec_tag
        for k, v in output_metadata(meta.tags, tags, meta.path).items():
            oc.metadata[k] = v
        copy = _CopyStreams(Path(streams_from), oc, fmt, warnings) if streams_from else None
        last_dts: int | None = None
        for seg in segments:
            n = 0
            for p in _segment_packets(work / seg.file, seg.first_pts, meta.time_base):
                if last_dts is not None and p.dts <= last_dts:  # VFR edge: decode times must increase
                    p.dts = last_dts + 1
                last_dts = p.dts
                p.stream = ostream
                oc.mux(p)
                n += 1
                if copy is not None:
                    copy.pump(float(p.pts * meta.time_base) + 0.5)
            if n != seg.frames:
                raise ProcessingError(f"{work / seg.file}: holds {n} frames, expected {seg.frames}; rerun with "
                                      f"--fresh (or delete {work}) to start over")
        if copy is not None:
            copy.finish()
        oc.close()
    except BaseException as exc:
        try:
            oc.close()
        except Exception:  # noqa: BLE001  (already failing: the first error is the one to report)
            pass
        part.unlink(missing_ok=True)
        if isinstance(exc, (av.error.FFmpegError, OSError)):
            raise ProcessingError(f"{output}: joining segments failed ({exc})") from None
        raise
    os.replace(part, output)
    return (copy.packets_copied if copy is not None else 0), warnings


# -- the resumable run --------------------------------------------------------------------------------
def prepare(input_path: str | os.PathLike, output_path: str | os.PathLike | None, style: str | Style,
            overwrite: bool, meta: VideoMeta | None = None) -> tuple[VideoMeta, Style, Path]:
    """Steps 1-2 of ``run``: probe, resolve the style, check the output path."""
    from vidcolor.pipelines.run import default_output

    meta = meta or probe(input_path)
    style_obj = style if isinstance(style, Style) else get_style(style)
    output = Path(output_path) if output_path else default_output(input_path, style_obj.name)
    if output.suffix.lower() not in FORMATS:
        raise InputError(f"{output}: unsupported output extension")
    return meta, style_obj, check_output_path(input_path, output, overwrite)


def run_resumable(input_path: str | os.PathLike, output_path: str | os.PathLike | None = None,
                  style: str | Style = "noir", *, meta: VideoMeta | None = None,
                  overrides: dict[str, Any] | None = None, device: str | None = None, overwrite: bool = False,
                  encoder: str = "pyav", codec: str = "libx264", crf: int | None = 18, pix_fmt: str | None = None,
                  encoder_options: dict[str, str] | None = None, chunk_size: int = 4,
                  progress: ProgressFn | None = None, segment_seconds: float | None = None,
                  segment_frames: int | None = None, allow_truncated: bool = False, fresh: bool = False):
    """``run`` in crash-safe segments; the same arguments and ``RunReport`` (see the module doc).
    Call it again with the same arguments after a crash to resume; ``fresh`` discards what an earlier
    run left in the work folder and starts over."""
    from vidcolor.pipelines.run import RunReport, bound_heap, pick_device

    started = time.perf_counter()
    bound_heap()
    meta, style_obj, output = prepare(input_path, output_path, style, overwrite, meta)
    style_obj.check(overrides)  # a bad style value or an unused option: before the work folder exists
    settings = EncodeSettings(style=style_obj, overrides=dict(overrides or {}), device=device, encoder=encoder,
                              codec=codec, crf=crf, pix_fmt=pix_fmt, encoder_options=dict(encoder_options or {}),
                              chunk_size=chunk_size, allow_truncated=allow_truncated)
    n = segment_frames or segment_frames_for(meta, chunk_size, segment_seconds)
    work = WorkFolder(work_dir_for(output), job_description(input_path, settings, n, "sequential"))
    if fresh:
        work.clear()
    else:
        work.open()
    dev = pick_device(device)
    stages = style_obj.build(StageContext(device=dev, overrides=dict(settings.overrides)))
    warnings: list[str] = []
    resume_at = work.next_frame
    if work.resumed:
        warnings.append(f"resumed at frame {resume_at} ({len(work.segments)} segments were already done)")
    _, more = encode_range(input_path, meta, settings, work.path, n, start=resume_at, states=work.load_states(),
                           on_segment=work.add, progress=progress, stages=stages)
    warnings.extend(more)
    copied, join_warnings = join_segments(work.segments, work.path, output, meta, streams_from=input_path,
                                          tags=settings.tags(stages))
    warnings.extend(join_warnings)
    frames = work.next_frame
    work.remove()
    seconds = time.perf_counter() - started
    return RunReport(input=str(input_path), output=str(output), style=style_obj.name, frames=frames,
                     seconds=round(seconds, 3), fps=round((frames - resume_at) / seconds, 2) if seconds else 0.0,
                     encoder=encoder, codec=codec, device=str(dev), stages=[s.describe() for s in stages],
                     warnings=warnings, audio_packets_copied=copied)


# -- segment-parallel ----------------------------------------------------------------------------------
@dataclass
class SplitJob:
    """One job of a segment-parallel run: frames ``start`` .. ``end - 1`` (None: to the end)."""

    input_path: str
    work: str
    settings: EncodeSettings
    segment_frames: int
    start: int
    end: int | None
    warmup: int = WARMUP_FRAMES
    threads: int = 0


def run_split_job(job: SplitJob) -> tuple[list[Segment], list[str]]:
    """Run one ``SplitJob`` (anywhere that sees the input and the work folder: a process, a Ray task)."""
    if job.threads:
        torch.set_num_threads(job.threads)
    meta = probe(job.input_path)
    return encode_range(job.input_path, meta, job.settings, Path(job.work), job.segment_frames, start=job.start,
                        end=job.end, warmup=job.warmup, save_state=False)


def plan_split(meta: VideoMeta, segment_frames: int, jobs: int) -> list[tuple[int, int | None]]:
    """Frame ranges for ``jobs`` parallel jobs, on segment boundaries; the last one is open-ended (the
    container's frame count may be an estimate, so the last job reads to the real end)."""
    total = meta.frame_count or segment_frames
    n_segments = max(1, -(-total // segment_frames))
    jobs = max(1, min(jobs, n_segments))
    per_job = -(-n_segments // jobs)
    ranges: list[tuple[int, int | None]] = []
    for j in range(jobs):
        a = j * per_job * segment_frames
        if a >= total and ranges:
            break
        ranges.append((a, (j + 1) * per_job * segment_frames))
    ranges[-1] = (ranges[-1][0], None)
    return ranges


@dataclass
class SplitPlan:
    """A segment-parallel run, planned: run its ``jobs`` anywhere, then ``finish_split`` with their results."""

    input_path: str
    output: str
    meta: VideoMeta
    settings: EncodeSettings
    work: str
    job: dict[str, Any]
    jobs: list[SplitJob]
    started: float


def plan_split_run(input_path: str | os.PathLike, output_path: str | os.PathLike | None = None,
                   style: str | Style = "noir", *, jobs: int | None = None, overrides: dict[str, Any] | None = None,
                   device: str | None = None, overwrite: bool = False, encoder: str = "pyav", codec: str = "libx264",
                   crf: int | None = 18, pix_fmt: str | None = None, encoder_options: dict[str, str] | None = None,
                   chunk_size: int = 4, segment_seconds: float | None = None, segment_frames: int | None = None,
                   warmup: int = WARMUP_FRAMES, threads: int = 0, allow_truncated: bool = False) -> SplitPlan:
    """Probe, check the output, empty the work folder and cut the film into jobs on segment
    boundaries (``jobs`` ranges; None: one job per segment)."""
    started = time.perf_counter()
    meta, style_obj, output = prepare(input_path, output_path, style, overwrite)
    style_obj.check(overrides)  # a bad style value or an unused option: before the work folder exists
    settings = EncodeSettings(style=style_obj, overrides=dict(overrides or {}), device=device, encoder=encoder,
                              codec=codec, crf=crf, pix_fmt=pix_fmt, encoder_options=dict(encoder_options or {}),
                              chunk_size=chunk_size, allow_truncated=allow_truncated)
    n = segment_frames or segment_frames_for(meta, chunk_size, segment_seconds)
    warmup = -(-warmup // chunk_size) * chunk_size  # whole chunks: the same chunking as a sequential run
    job = job_description(input_path, settings, n, "parallel")
    work = WorkFolder(work_dir_for(output), job)
    work.clear()  # jobs are short and need no saved state: a rerun redoes them all
    ranges = plan_split(meta, n, jobs or 1 << 30)
    return SplitPlan(str(input_path), str(output), meta, settings, str(work.path), job,
                     [SplitJob(str(input_path), str(work.path), settings, n, a, b, warmup, threads) for a, b in ranges],
                     started)


def finish_split(plan: SplitPlan, results: Iterable[tuple[list[Segment], list[str]]]):
    """Join the segments the jobs wrote, remove the work folder, return a ``RunReport``."""
    from vidcolor.pipelines.run import RunReport, pick_device

    work = WorkFolder(Path(plan.work), plan.job)
    warnings: list[str] = []
    for segs, more in results:
        for seg in segs:
            work.add(seg)
        warnings.extend(w for w in more if w not in warnings)
    dev = pick_device(plan.settings.device)
    stages = plan.settings.style.build(StageContext(device=dev, overrides=dict(plan.settings.overrides)))
    copied, join_warnings = join_segments(work.segments, work.path, Path(plan.output), plan.meta,
                                          streams_from=plan.input_path, tags=plan.settings.tags(stages))
    warnings.extend(join_warnings)
    frames = work.next_frame
    work.remove()
    seconds = time.perf_counter() - plan.started
    s = plan.settings
    return RunReport(input=plan.input_path, output=plan.output, style=s.style.name, frames=frames,
                     seconds=round(seconds, 3), fps=round(frames / seconds, 2) if seconds > 0 else 0.0,
                     encoder=s.encoder, codec=s.codec, device=str(dev), stages=[st.describe() for st in stages],
                     warnings=warnings, audio_packets_copied=copied)


def run_split(input_path: str | os.PathLike, output_path: str | os.PathLike | None = None,
              style: str | Style = "noir", *, map_jobs: Callable[[list[SplitJob]], list] | None = None,
              **kwargs: Any):
    """Segment-parallel ``run``: ``plan_split_run(**kwargs)``, run the jobs with ``map_jobs``
    (``list[SplitJob] -> list[(segments, warnings)]``; default: one after the other in this process;
    the Ray executor runs them as Ray tasks), then ``finish_split``. Returns a ``RunReport``."""
    plan = plan_split_run(input_path, output_path, style, **kwargs)
    results = (map_jobs or (lambda jobs: [run_split_job(j) for j in jobs]))(plan.jobs)
    return finish_split(plan, results)
