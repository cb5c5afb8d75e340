"""Segment-parallel runs: a film cut into frame ranges processed as independent jobs, then joined.

``plan_split_run`` checks the output, empties the work folder and cuts the film into ``SplitJob``s
on segment boundaries; each job (``run_split_job``: in a process, a Ray task...) decodes
``WARMUP_FRAMES`` before its first frame and runs them through the stages unwritten, so temporal
state is warm and the join shows no seam; ``finish_split`` joins what the jobs wrote.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vidcolor.errors import InputError
from vidcolor.io.probe import VideoMeta, probe
from vidcolor.settings import RunSettings, make_settings
from vidcolor.styles import Style

from .join import join_segments
from .paths import output_for
from .report import RunReport
from .segments import encode_range, segment_frames_for
from .stream import build_stages, pick_device
from .workdir import Segment, WorkFolder, job_description, work_dir_for

# Frames a segment-parallel job runs through the stages before its first frame. The stabilizer's
# memory of the past decays like strength**n (0.6**16 < 1/255): after 16 frames the warm state is
# indistinguishable from the sequential one in 8-bit output.
WARMUP_FRAMES = 16


@dataclass
class SplitJob:
    """One job of a segment-parallel run: frames ``start`` .. ``end - 1`` (None: to the end)."""

    input_path: str
    work: str
    settings: RunSettings
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
    settings: RunSettings
    work: str
    job: dict[str, Any]
    jobs: list[SplitJob]
    started: float


def plan_split_run(input_path: str | os.PathLike, output_path: str | os.PathLike | None = None,
                   settings: RunSettings | str | Style = "noir", *, jobs: int | None = None,
                   segment_seconds: float | None = None, segment_frames: int | None = None,
                   warmup: int = WARMUP_FRAMES, threads: int = 0, **options: Any) -> SplitPlan:
    """Probe, check the output, empty the work folder and cut the film into jobs on segment
    boundaries (``jobs`` ranges; None: one job per segment)."""
    started = time.perf_counter()
    settings = make_settings(settings, **options)
    if settings.overrides.get("keyframes") or settings.overrides.get("hints"):
        # guides are carried from any earlier frame of a shot, which a job's short warm-up cannot replay
        raise InputError("guided colorization (keyframes, hints) runs a film in one piece: it cannot be split "
                         "into parallel segments")
    meta = probe(input_path)
    output = output_for(input_path, output_path, settings)
    chunk_size = settings.chunk_size
    n = segment_frames or segment_frames_for(meta, chunk_size, segment_seconds)
    warmup = -(-warmup // chunk_size) * chunk_size  # whole chunks: the same chunking as a sequential run
    job = job_description(input_path, settings, n, "parallel")
    work = WorkFolder(work_dir_for(output), job)
    work.clear()  # jobs are short and need no saved state: a rerun redoes them all
    ranges = plan_split(meta, n, jobs or 1 << 30)
    return SplitPlan(str(input_path), str(output), meta, settings, str(work.path), job,
                     [SplitJob(str(input_path), str(work.path), settings, n, a, b, warmup, threads) for a, b in ranges],
                     started)


def finish_split(plan: SplitPlan, results: Iterable[tuple[list[Segment], list[str]]]) -> RunReport:
    """Join the segments the jobs wrote, remove the work folder, return a ``RunReport``."""
    work = WorkFolder(Path(plan.work), plan.job)
    warnings: list[str] = []
    for segs, more in results:
        for seg in segs:
            work.add(seg)
        warnings.extend(w for w in more if w not in warnings)
    dev = pick_device(plan.settings.device)
    stages = build_stages(plan.settings, dev)
    tags = plan.settings.tags(stages)
    copied, join_warnings = join_segments(work.segments, work.path, Path(plan.output), plan.meta,
                                          streams_from=plan.input_path, tags=tags)
    warnings.extend(join_warnings)
    frames = work.next_frame
    work.remove()
    seconds = time.perf_counter() - plan.started
    s = plan.settings
    return RunReport(input=plan.input_path, output=plan.output, style=s.style.name, frames=frames,
                     seconds=round(seconds, 3), fps=round(frames / seconds, 2) if seconds > 0 else 0.0,
                     encoder=s.encoder.backend, codec=s.encoder.codec, device=str(dev), stages=tags["stages"],
                     warnings=warnings, audio_packets_copied=copied)


def run_split(input_path: str | os.PathLike, output_path: str | os.PathLike | None = None,
              settings: RunSettings | str | Style = "noir", *, map_jobs: Callable[[list[SplitJob]], list] | None = None,
              **kwargs: Any) -> RunReport:
    """Segment-parallel ``run``: ``plan_split_run(**kwargs)``, run the jobs with ``map_jobs``
    (``list[SplitJob] -> list[(segments, warnings)]``; default: one after the other in this process;
    the Ray executor runs them as Ray tasks), then ``finish_split``. Returns a ``RunReport``."""
    plan = plan_split_run(input_path, output_path, settings, **kwargs)
    results = (map_jobs or (lambda jobs: [run_split_job(j) for j in jobs]))(plan.jobs)
    return finish_split(plan, results)
