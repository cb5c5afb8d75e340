"""What each output container can hold, and the output file conventions shared by both encoder
backends (format from the extension, ``.part`` files, provenance tags)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
# Text subtitle codecs (ASS events inside FFmpeg), which a subtitle encoder can re-encode; bitmap
# subtitles (dvd_subtitle, hdmv_pgs_subtitle, dvb_subtitle) cannot become text.
TEXT_SUBTITLES = {"subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "text"}
# When a text subtitle stream cannot be copied: the codec to re-encode it to.
SUBTITLE_FALLBACK = {"mp4": "mov_text", "mov": "mov_text"}
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


def subtitle_fallback(fmt: str, codec: str | None) -> str | None:
    """The codec a subtitle stream that ``fmt`` cannot hold as it is is re-encoded to (text subtitles
    into mp4/mov become mov_text), or None when it cannot be kept."""
    return SUBTITLE_FALLBACK.get(fmt) if codec in TEXT_SUBTITLES else None


def video_codec_tag(fmt: str, codec: str) -> str | None:
    """The codec tag to force: HEVC in mp4/mov as ``hvc1`` (parameter sets in the sample description),
    which QuickTime and Apple devices require; FFmpeg's default ``hev1`` does not play there."""
    if fmt in ("mp4", "mov") and (codec == "libx265" or codec.startswith("hevc")):
        return "hvc1"
    return None


def check_video_codec(fmt: str, codec: str) -> None:
    allowed = VIDEO_OK.get(fmt)
    if allowed is not None and codec not in allowed:
        raise InputError(f"the {fmt} container cannot hold {codec} video (use .mkv or .mp4, or --codec one of "
                         f"{', '.join(sorted(allowed))})")


def part_path(path: str | os.PathLike) -> Path:
    """``out.mp4`` -> ``out.mp4.part``: where output is written until it is complete."""
    p = Path(path)
    return p.with_name(p.name + ".part")


@contextmanager
def writing_part(path: str | os.PathLike) -> Iterator[Path]:
    """Write ``path`` whole or not at all: yields ``path.part`` to write, renames it to ``path`` when
    the block ends without error and removes it when the block fails."""
    part = part_path(path)
    part.unlink(missing_ok=True)
    try:
        yield part
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, path)


def remove_part(path: str | os.PathLike) -> None:
    """Remove ``path.part``, the partial output a killed or failed writer left, if there is one."""
    part_path(path).unlink(missing_ok=True)


# Resumable runs keep their segments in ``OUTPUT + WORK_SUFFIX`` (``pipelines/segments.py``).
WORK_SUFFIX = ".vidcolor-work"


def work_dir_path(path: str | os.PathLike) -> Path:
    """``film.mp4`` -> ``film.mp4.vidcolor-work``: the work folder of a resumable run, beside the output."""
    p = Path(path)
    return p.with_name(p.name + WORK_SUFFIX)


def _same_file(a: Path, b: Path) -> bool:
    """``a`` and ``b`` name one file: the same path after resolving links, or hard/symbolic links to it."""
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def check_scratch_paths(input_path: str | os.PathLike, output_path: str | os.PathLike) -> None:
    """Refuse an output whose file, ``.part`` file or work folder is the input or holds it: the
    writer deletes a stale ``.part`` and a resumed run empties its work folder before reading."""
    src, out = Path(input_path), Path(output_path)
    if _same_file(out, src):
        raise InputError(f"{out}: output is the input file; refusing to overwrite the input")
    part = part_path(out)
    if _same_file(part, src):
        raise InputError(f"{out}: its temporary file {part.name} is the input; refusing to overwrite the input "
                         "(rename the input or choose another output name)")
    work = work_dir_path(out)
    if _same_file(work, src) or work.resolve() in src.resolve().parents:
        raise InputError(f"{out}: its work folder {work.name} is or holds the input; refusing to delete the "
                         "input (move the input or choose another output name)")


def check_output_path(input_path: str | os.PathLike | None, output_path: str | os.PathLike, overwrite: bool) -> Path:
    out = Path(output_path)
    output_format(out)
    if input_path is not None:
        check_scratch_paths(input_path, out)
    if out.exists() and not overwrite:
        raise InputError(f"{out}: exists (pass --overwrite to replace it)")
    if out.is_dir():
        raise InputError(f"{out}: is a folder")
    if not out.parent.exists():
        raise InputError(f"{out.parent}: output folder does not exist")
    return out


# Source container tags that describe the old file's muxing, not the film: never carried over.
_MUXING_TAGS = {"major_brand", "minor_version", "compatible_brands", "encoder", "duration"}
PROVENANCE_COMMENT = "made with vidcolor"
# How much of the input ``input_identity`` hashes: enough to tell files apart, cheap on a 50 GB master.
IDENTITY_BYTES = 1 << 20


def input_identity(path: str | os.PathLike) -> dict[str, Any]:
    """``{"name", "size", "sha256_first_mib"}`` of the input file (the hash covers its first MiB)."""
    p = Path(path)
    with open(p, "rb") as f:
        head = f.read(IDENTITY_BYTES)
    return {"name": p.name, "size": p.stat().st_size, "sha256_first_mib": hashlib.sha256(head).hexdigest()}


def provenance_tags(tags: dict[str, object]) -> dict[str, str]:
    """Container tags: ``vidcolor_*`` keys (JSON for anything but a string) plus a human-readable ``comment``."""
    out = {f"vidcolor_{k}": (v if isinstance(v, str) else json.dumps(v, sort_keys=True, separators=(",", ":")))
           for k, v in tags.items()}
    out["comment"] = PROVENANCE_COMMENT + " " + " ".join(f"{k}={out[f'vidcolor_{k}']}" for k in ("version", "style")
                                                         if f"vidcolor_{k}" in out)
    return out


def output_metadata(source_tags: Mapping[str, str], tags: dict[str, Any] | None,
                    input_path: str | os.PathLike | None = None) -> dict[str, str]:
    """The output container's tags: the source's own (title, artist, date, ...; keys lower-cased,
    muxing details and old ``vidcolor_*`` tags left out), then the provenance of this run on top.

    With ``tags``, ``input_path`` adds ``vidcolor_input`` (``input_identity``) unless ``tags`` has one.
    A source ``comment`` is kept in front of the vidcolor line rather than replaced."""
    out: dict[str, str] = {}
    for key, value in source_tags.items():
        k = key.lower()
        if k in _MUXING_TAGS or k.startswith("vidcolor_"):
            continue
        out[k] = value
    if not tags:
        return out
    tags = dict(tags)
    if input_path is not None and "input" not in tags:
        try:
            tags["input"] = input_identity(input_path)
        except OSError:
            pass  # the input is gone (it was probed before): the tag is left out rather than failing the run
    ours = provenance_tags(tags)
    source_comment = "\n".join(line for line in out.pop("comment", "").splitlines()
                               if line.strip() and not line.startswith(PROVENANCE_COMMENT))
    if source_comment:
        ours["comment"] = source_comment + "\n" + ours["comment"]
    out.update(ours)
    return out


# Codecs that encode 10-bit 4:2:0 and are chosen at 10 bits for a source of more than 8 bits
# (H.264 High 10 is left out: most hardware decoders and browsers cannot play it).
TEN_BIT_DEFAULT = {"libx265", "ffv1"}


def default_pix_fmt(codec: str, width: int, height: int, bit_depth: int = 8) -> tuple[str, str | None]:
    """The pixel format for ``codec`` and a warning if the usual one cannot hold this size.

    4:2:0 needs even width and height; for odd sizes we keep the exact size and encode 4:4:4
    (H.264 High 4:4:4 / HEVC Main 4:4:4) rather than crop or pad the picture. A source of more
    than 8 bits gets a 10-bit format from codecs in ``TEN_BIT_DEFAULT``."""
    odd = width % 2 or height % 2
    if codec == "prores_ks":
        return "yuv422p10le" if not odd else "yuv444p10le", None
    deep = "10le" if bit_depth > 8 and codec in TEN_BIT_DEFAULT else ""
    if codec in ("ffv1", "libx264rgb"):
        return ("yuv420p" + deep if not odd else "yuv444p" + deep) if codec == "ffv1" else "rgb24", None
    if odd:
        return "yuv444p" + deep, (f"odd frame size {width}x{height}: 4:2:0 needs even sizes, encoding 4:4:4 "
                                  "to keep the exact size")
    return "yuv420p" + deep, None


def reconcile_pix_fmt(pix_fmt: str, width: int, height: int) -> tuple[str, str | None]:
    """A user-chosen pixel format that subsamples chroma cannot encode odd sizes: switch to 4:4:4."""
    odd = width % 2 or height % 2
    sub = {"yuv420p": "yuv444p", "yuv422p": "yuv444p", "yuv420p10le": "yuv444p10le", "yuv422p10le": "yuv444p10le",
           "nv12": "yuv444p"}
    if odd and pix_fmt in sub:
        return sub[pix_fmt], f"odd frame size {width}x{height}: {pix_fmt} needs even sizes, using {sub[pix_fmt]}"
    return pix_fmt, None
