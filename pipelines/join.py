"""Joining the segments of a resumable or segment-parallel run: remux, no re-encode.

The segments' video packets go into ``OUTPUT.part`` with the input's audio and subtitle streams
(``CopyStreams``, the writer's copier: the same codec rules and interleaving as a plain run), the
source pts restored; the file is then renamed to ``OUTPUT``. NUT shifts timestamps to make decode
times non-negative and stores no decode times for the first packets; ``_segment_packets`` undoes
the shift (it knows each segment's first source pts) and rebuilds the missing decode times.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from vidcolor.errors import ProcessingError
from vidcolor.io.containers import output_format, output_metadata, video_codec_tag, writing_part
from vidcolor.io.probe import VideoMeta
from vidcolor.io.writer import CopyStreams

from .workdir import Segment


def _segment_packets(path: Path, first_pts: int, time_base: Fraction) -> Iterator[av.Packet]:
    """The video packets of one segment with pts/dts back in the source time base (see module doc)."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        stamps = [(p.pts, p.dts) for p in c.demux(s) if p.size]
        tb = Fraction(s.time_base)  # read while open: PyAV 18 refuses a closed container's streams
    if not stamps:
        return
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
    if not segments:
        raise ProcessingError(f"{output}: no frames were decoded, nothing to join")
    fmt = output_format(output)
    opts = {"movflags": "+faststart+use_metadata_tags"} if fmt in ("mp4", "mov") else {}
    warnings: list[str] = []
    with writing_part(output) as part:
        oc = av.open(str(part), mode="w", format=fmt, options=opts)
        try:
            copy = _remux(segments, work, oc, fmt, meta, streams_from, tags, warnings)
            oc.close()
        except BaseException as exc:
            try:
                oc.close()
            except Exception:  # noqa: BLE001  (already failing: the first error is the one to report)
                pass
            if isinstance(exc, (av.error.FFmpegError, OSError)):
                raise ProcessingError(f"{output}: joining segments failed ({exc})") from None
            raise
    return (copy.packets_copied if copy is not None else 0), warnings


def _remux(segments: list[Segment], work: Path, oc: Any, fmt: str, meta: VideoMeta,
           streams_from: str | os.PathLike | None, tags: dict[str, Any] | None, warnings: list[str]) -> CopyStreams | None:
    """Mux the segments' video packets into ``oc`` with the streams of ``streams_from`` interleaved."""
    with av.open(str(work / segments[0].file)) as first:
        ostream = oc.add_stream_from_template(first.streams.video[0])
    ostream.time_base = meta.time_base
    if codec_tag := video_codec_tag(fmt, ostream.codec_context.name):
        ostream.codec_context.codec_tag = codec_tag
    for k, v in output_metadata(meta.tags, tags, meta.path).items():
        oc.metadata[k] = v
    copy = CopyStreams(Path(streams_from), oc, fmt, warnings) if streams_from else None
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
    return copy
