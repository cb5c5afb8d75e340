"""``probe(path) -> VideoMeta``: what a video file holds, without decoding its frames.

Errors are ``VideoError`` with the file name and a reason a person can act on (missing, empty,
not a video, no video stream), never a PyAV traceback.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from vidcolor.errors import InputError, VideoError

# How many video packets probe reads to decide whether the frame rate is variable.
VFR_SCAN_PACKETS = 600


@dataclass(frozen=True)
class StreamInfo:
    index: int
    type: str  # video | audio | subtitle | data | attachment
    codec: str | None
    language: str | None = None
    detail: str = ""  # "2ch 48000 Hz", "1280x720", ...


@dataclass(frozen=True)
class VideoMeta:
    """Facts about the first video stream of a file and the streams beside it.

    ``width``/``height`` are the coded size; ``display_width``/``display_height`` the size after
    applying ``rotation`` (degrees counter-clockwise, FFmpeg's display-matrix convention), which is
    what the reader yields and the writer encodes.
    """

    path: str
    format: str
    video_index: int
    codec: str
    width: int
    height: int
    display_width: int
    display_height: int
    rotation: int
    frame_rate: Fraction
    time_base: Fraction
    start_pts: int
    duration: float | None
    frame_count: int | None
    frame_count_exact: bool
    vfr: bool
    pix_fmt: str | None
    bit_depth: int
    sample_aspect_ratio: Fraction | None
    color_space: str | None
    color_range: str | None
    color_primaries: str | None
    color_trc: str | None
    # Raw FFmpeg codes (space, range, primaries, trc; 2 = unspecified) so the writer tags the output alike.
    color_codes: tuple[int, int, int, int] = (2, 0, 2, 2)
    streams: tuple[StreamInfo, ...] = field(default_factory=tuple)
    tags: dict[str, str] = field(default_factory=dict)
    # Where the file says its data ends, in seconds on the stream clock: the video stream's own end
    # (``end_time_of_video``) or the container's, which any stream may reach. None when the header
    # states no duration (it would be an estimate): the reader's truncation check uses it.
    end_time: float | None = None
    end_time_of_video: bool = False

    @property
    def audio_streams(self) -> list[StreamInfo]:
        return [s for s in self.streams if s.type == "audio"]

    @property
    def subtitle_streams(self) -> list[StreamInfo]:
        return [s for s in self.streams if s.type == "subtitle"]

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["frame_rate"] = f"{self.frame_rate.numerator}/{self.frame_rate.denominator}"
        d["frame_rate_float"] = float(self.frame_rate)
        d["time_base"] = f"{self.time_base.numerator}/{self.time_base.denominator}"
        sar = self.sample_aspect_ratio
        d["sample_aspect_ratio"] = f"{sar.numerator}/{sar.denominator}" if sar else None
        return d


def check_input_file(path: str | os.PathLike) -> Path:
    """The checks every command does before opening a video: exists, is a file, not empty."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a folder, not a video file")
    if p.stat().st_size == 0:
        raise VideoError(f"{p}: empty file (0 bytes)")
    return p


def open_input(path: str | os.PathLike) -> av.container.InputContainer:
    """``av.open`` with errors turned into one-line ``VideoError``s."""
    p = check_input_file(path)
    try:
        return av.open(str(p), mode="r", metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise VideoError(f"{p}: not a readable video file ({_reason(exc)})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VideoError(f"{p}: cannot open ({exc})") from None


def _reason(exc: Exception) -> str:
    msg = getattr(exc, "strerror", None) or str(exc)
    return msg.split(":")[0].strip() if msg else type(exc).__name__


def _rotation(stream: av.video.stream.VideoStream, container: av.container.InputContainer) -> int:
    """Display rotation in degrees (counter-clockwise, a multiple of 90) from the first frame's display matrix."""
    try:
        for frame in container.decode(stream):
            rot = int(round(getattr(frame, "rotation", 0) or 0))
            return (rot // 90 * 90) % 360 if rot % 90 == 0 else 0
    except av.error.FFmpegError:
        pass
    return 0


# FFmpeg's enum values (libavutil/pixfmt.h) -> the names ffprobe prints.
_SPACES = {0: "gbr", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "ycgco",
           9: "bt2020nc", 10: "bt2020c"}
_RANGES = {1: "tv", 2: "pc"}
_PRIMARIES = {1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film", 9: "bt2020",
              11: "smpte431", 12: "smpte432"}
_TRCS = {1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
         13: "iec61966-2-1", 14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 18: "arib-std-b67"}


def _code(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _stream_detail(s: av.stream.Stream) -> str:
    cc = s.codec_context
    if s.type == "audio" and cc is not None:
        return f"{cc.channels}ch {cc.sample_rate} Hz"
    if s.type == "video" and cc is not None:
        return f"{cc.width}x{cc.height}"
    return ""


# Containers whose header states the durations (FFmpeg estimates the others from timestamps or bit rate).
HEADER_DURATION_FORMATS = ("matroska", "mov")


def _end_time(container: av.container.InputContainer, v: av.video.stream.VideoStream) -> tuple[float | None, bool]:
    """``(end, of_video)``: where the header says the video stream (``of_video``) or the file ends,
    in seconds; ``(None, False)`` when it states no duration."""
    names = container.format.name.split(",")
    if not any(n in HEADER_DURATION_FORMATS for n in names):
        return None, False
    if v.duration and v.time_base:
        return float(((v.start_time or 0) + v.duration) * v.time_base), True
    tag = v.metadata.get("DURATION") or v.metadata.get("duration")  # Matroska: the stream's end time
    if tag:
        try:
            h, m, sec = tag.split(":")
            return int(h) * 3600 + int(m) * 60 + float(sec), True
        except ValueError:
            pass
    if container.duration:
        # Matroska's segment duration counts from 0; other formats' from the start time
        start = 0 if "matroska" in names else (container.start_time or 0)
        return (start + container.duration) / av.time_base, False
    return None, False


def probe(path: str | os.PathLike) -> VideoMeta:
    """Read the container header and scan the first video packets; no full decode."""
    container = open_input(path)
    p = Path(path)
    try:
        streams = tuple(
            StreamInfo(index=s.index, type=s.type,
                       codec=(s.codec_context.name if s.codec_context is not None else None),
                       language=(s.language if hasattr(s, "language") else None) or s.metadata.get("language"),
                       detail=_stream_detail(s))
            for s in container.streams
        )
        if not container.streams.video:
            kinds = ", ".join(f"{s.type}/{s.codec}" for s in streams) or "none"
            raise VideoError(f"{p}: no video stream (streams: {kinds})")
        v = container.streams.video[0]
        cc = v.codec_context
        if cc is None or cc.width == 0 or cc.height == 0:
            raise VideoError(f"{p}: video stream has no decodable picture (codec {v.codec_context})")
        rate = v.average_rate or v.guessed_rate or v.base_rate
        if not rate:
            raise VideoError(f"{p}: cannot tell the frame rate of the video stream")
        time_base = v.time_base or Fraction(1, 1000)

        # Frame timing: scan the first packets' pts to find a variable frame rate.
        pts: list[int] = []
        try:
            for packet in container.demux(v):
                if packet.pts is not None:
                    pts.append(packet.pts)
                if len(pts) >= VFR_SCAN_PACKETS:
                    break
        except av.error.FFmpegError:
            pass
        pts.sort()
        deltas = {b - a for a, b in zip(pts, pts[1:])}
        tol = max(1, int(0.1 / float(rate) / float(time_base)))  # mkv rounds to 1 ms
        vfr = bool(deltas) and (max(deltas) - min(deltas)) > tol
        start_pts = v.start_time if v.start_time is not None else (pts[0] if pts else 0)

        if v.duration:
            duration = float(v.duration * time_base)
        elif container.duration:
            duration = container.duration / av.time_base
        else:
            duration = None
        end_time, end_of_video = _end_time(container, v)
        frame_count_exact = bool(v.frames)
        frame_count = int(v.frames) if v.frames else (round(duration * float(rate)) if duration else None)

        container.seek(0)
        rotation = _rotation(v, container)
        w, h = cc.width, cc.height
        dw, dh = (h, w) if rotation in (90, 270) else (w, h)
        fmt = cc.format
        bit_depth = max((c.bits for c in fmt.components), default=8) if fmt is not None else 8
        sar = v.sample_aspect_ratio
        codes = (_code(cc.colorspace), _code(cc.color_range), _code(getattr(cc, "color_primaries", 2)),
                 _code(getattr(cc, "color_trc", 2)))
        return VideoMeta(
            path=str(p), format=container.format.name, video_index=v.index, codec=cc.name, width=w, height=h,
            display_width=dw, display_height=dh, rotation=rotation, frame_rate=Fraction(rate),
            time_base=Fraction(time_base), start_pts=int(start_pts or 0), duration=duration,
            frame_count=frame_count, frame_count_exact=frame_count_exact, vfr=vfr,
            pix_fmt=cc.pix_fmt, bit_depth=bit_depth,
            sample_aspect_ratio=Fraction(sar) if sar and sar != 0 else None,
            color_space=_SPACES.get(codes[0]), color_range=_RANGES.get(codes[1]),
            color_primaries=_PRIMARIES.get(codes[2]), color_trc=_TRCS.get(codes[3]), color_codes=codes,
            streams=streams, tags=dict(container.metadata), end_time=end_time, end_time_of_video=end_of_video,
        )
    except av.error.FFmpegError as exc:
        raise VideoError(f"{p}: cannot read ({_reason(exc)})") from None
    finally:
        container.close()
