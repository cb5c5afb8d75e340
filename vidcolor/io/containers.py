"""What each output container can hold, and the output file conventions shared by both encoder
backends (format from the extension, ``.part`` files, provenance tags)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from vidcolor.errors import InputError

# extension -> FFmpeg muxer name
FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi",
           ".nut": "nut", ".mxf": "mxf"}

# Codecs each muxer takes by stream copy (None: anything FFmpeg can put in Matroska/NUT).
AUDIO_OK: dict[str, set[str] | None] = {
    "mp4": {"aac", "mp3", "mp3float", "ac3", "eac3", "opus", "flac", "alac"},
    "mov": {"aac", "mp3", "mp3float", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s24le", "pcm_s16be", "pcm_s24be",
            "opus", "flac"},
    "matroska": None, "nut": None,
    "webm": {"opus", "vorbis"},
    "avi": {"mp3", "mp3float", "ac3", "pcm_s16le", "aac"},
    "mxf": {"pcm_s16le", "pcm_s24le"},
}
SUBTITLE_OK: dict[str, set[str] | None] = {
    "mp4": {"mov_text"}, "mov": {"mov_text"}, "matroska": {"subrip", "srt", "ass", "ssa", "webvtt", "dvd_subtitle",
                                                           "hdmv_pgs_subtitle", "dvb_subtitle"},
    "nut": None, "webm": {"webvtt"}, "avi": set(), "mxf": set(),
}
# When an audio stream cannot be copied: the codec to transcode it to.
AUDIO_FALLBACK = {"mp4": "aac", "mov": "aac", "webm": "libopus", "avi": "mp3", "mxf": "pcm_s16le"}
# Video encoders each muxer takes.
VIDEO_OK: dict[str, set[str] | None] = {
    "webm": {"libvpx", "libvpx-vp9", "libaom-av1", "libsvtav1"},
    "avi": {"libx264", "mpeg4", "ffv1", "mjpeg"},
}
# mp4's decoder names for copied codecs differ from the codec ids in a few cases
DECODER_ALIASES = {"mp3float": "mp3"}


def output_format(path: str | os.PathLike) -> str:
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        raise InputError(f"{path}: unsupported output extension {ext or '(none)'!r} "
                         f"(use one of {', '.join(sorted(FORMATS))})")
    return FORMATS[ext]


def can_copy(fmt: str, stream_type: str, codec: str | None) -> bool:
    table = AUDIO_OK if stream_type == "audio" else SUBTITLE_OK if stream_type == "subtitle" else {}
    allowed = table.get(fmt, set())
    if allowed is None:
        return True
    return codec is not None and (codec in allowed or DECODER_ALIASES.get(codec, codec) in allowed)


def check_video_codec(fmt: str, codec: str) -> None:
    allowed = VIDEO_OK.get(fmt)
    if allowed is not None and codec not in allowed:
        raise InputError(f"the {fmt} container cannot hold {codec} video (use .mkv or .mp4, or --codec one of "
                         f"{', '.join(sorted(allowed))})")


def part_path(path: str | os.PathLike) -> Path:
    """``out.mp4`` -> ``out.mp4.part``: where output is written until it is complete."""
    p = Path(path)
    return p.with_name(p.name + ".part")


def check_output_path(input_path: str | os.PathLike | None, output_path: str | os.PathLike, overwrite: bool) -> Path:
    out = Path(output_path)
    output_format(out)
    if input_path is not None and out.exists() and Path(input_path).exists() and out.samefile(input_path):
        raise InputError(f"{out}: output is the input file; refusing to overwrite the input")
    if input_path is not None and out.resolve() == Path(input_path).resolve():
        raise InputError(f"{out}: output is the input file; refusing to overwrite the input")
    if out.exists() and not overwrite:
        raise InputError(f"{out}: exists (pass --overwrite to replace it)")
    if out.is_dir():
        raise InputError(f"{out}: is a folder")
    if not out.parent.exists():
        raise InputError(f"{out.parent}: output folder does not exist")
    return out


def provenance_tags(tags: dict[str, object]) -> dict[str, str]:
    """Container tags: ``vidcolor_*`` keys plus a human-readable ``comment``."""
    out = {f"vidcolor_{k}": (v if isinstance(v, str) else json.dumps(v, sort_keys=True)) for k, v in tags.items()}
    out["comment"] = "made with vidcolor " + " ".join(f"{k}={out[f'vidcolor_{k}']}" for k in ("version", "style")
                                                      if f"vidcolor_{k}" in out)
    return out


def default_pix_fmt(codec: str, width: int, height: int, bit_depth: int = 8) -> tuple[str, str | None]:
    """The pixel format for ``codec`` and a warning if the usual one cannot hold this size.

    4:2:0 needs even width and height; for odd sizes we keep the exact size and encode 4:4:4
    (H.264 High 4:4:4 / HEVC Main 4:4:4) rather than crop or pad the picture."""
    odd = width % 2 or height % 2
    if codec == "prores_ks":
        return "yuv422p10le" if not odd else "yuv444p10le", None
    if codec in ("ffv1", "libx264rgb"):
        return ("yuv420p" if not odd else "yuv444p") if codec == "ffv1" else "rgb24", None
    if odd:
        return "yuv444p", (f"odd frame size {width}x{height}: 4:2:0 needs even sizes, encoding 4:4:4 "
                           "to keep the exact size")
    return "yuv420p", None


def reconcile_pix_fmt(pix_fmt: str, width: int, height: int) -> tuple[str, str | None]:
    """A user-chosen pixel format that subsamples chroma cannot encode odd sizes: switch to 4:4:4."""
    odd = width % 2 or height % 2
    sub = {"yuv420p": "yuv444p", "yuv422p": "yuv444p", "yuv420p10le": "yuv444p10le", "yuv422p10le": "yuv444p10le",
           "nv12": "yuv444p"}
    if odd and pix_fmt in sub:
        return sub[pix_fmt], f"odd frame size {width}x{height}: {pix_fmt} needs even sizes, using {sub[pix_fmt]}"
    return pix_fmt, None
