"""What both encoder backends share: output settings decided before the first frame, and the frame check."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.codec.context import OptionFlags

from vidcolor.errors import InputError
from vidcolor.io.containers import (
    check_video_codec,
    default_pix_fmt,
    output_format,
    output_metadata,
    part_path,
    reconcile_pix_fmt,
)
from vidcolor.io.grey import output_coding
from vidcolor.io.probe import VideoMeta

# x264/x265 preset unless ``-e preset=...`` says otherwise. Measured on an 854x480 Tears of Steel
# excerpt (240 frames, crf 18, ffmpeg CLI, 2 cores): medium 79 frames/s, 48.9 dB PSNR / SSIM 0.9942
# against the source, 2.28 MB; veryfast 182 frames/s, 46.9 dB / 0.9922, 2.19 MB. Encoding at medium
# costs more CPU per frame than the whole colorize style, so the default is veryfast; archive
# masters can ask for ``-e preset=slow``.
DEFAULT_X264_PRESET = "veryfast"


# Encoders whose quality is set by ``--crf`` (ProRes and FFV1 have no CRF).
CRF_CODECS = ("libx264", "libx265")


def encoder_options(codec: str, crf: int | None, extra: dict[str, str]) -> dict[str, str]:
    opts: dict[str, str] = {}
    if codec in CRF_CODECS:
        opts["preset"] = DEFAULT_X264_PRESET
        if crf is not None:
            opts["crf"] = str(crf)
    if codec == "libx265":
        opts.setdefault("x265-params", "log-level=error")
    if codec == "prores_ks":
        opts.setdefault("profile", "3")  # ProRes 422 HQ
    opts.update(extra)
    return opts


def encoder_tag(backend: str, codec: str, crf: int | None, options: dict[str, str] | None) -> dict[str, Any]:
    """The ``vidcolor_encoder`` provenance: backend, codec, the options the encoder got (defaults and
    ``-e``), and ``crf`` only for codecs that use it."""
    opts = encoder_options(codec, crf, dict(options or {}))
    tag: dict[str, Any] = {"backend": backend, "codec": codec}
    if codec in CRF_CODECS and "crf" in opts:
        tag["crf"] = int(opts.pop("crf")) if opts["crf"].isdigit() else opts.pop("crf")
    tag["options"] = opts
    return tag


def pyav_option_names(codec: str) -> tuple[list[str], list[str]] | None:
    """(private, generic) option names libavcodec's ``codec`` encoder takes for video, or None when
    PyAV's FFmpeg has no such encoder."""
    try:
        supported = av.CodecContext.create(codec, "w").supported_options
    except (ValueError, av.error.FFmpegError):
        return None
    video_enc = OptionFlags.ENCODING_PARAM | OptionFlags.VIDEO_PARAM
    generic = [o.name for o in supported.generic if o.flags & video_enc == video_enc]
    return [o.name for o in supported.private], generic


def check_encoder_options(codec: str, options: dict[str, str], names: tuple[list[str], list[str]]) -> None:
    """``InputError`` naming the first ``-e`` option that ``codec`` does not have (``names``: its private
    and generic option names), so a typo stops the run before the first frame instead of being ignored."""
    private, generic = names
    known = set(private) | set(generic)
    for key, value in options.items():
        if key not in known:
            listed = ", ".join(private[:10]) + (", ..." if len(private) > 10 else "")
            raise InputError(f"-e {key}={value}: {codec} has no option {key!r} (known: {listed or 'none'}; "
                             "and the generic ones: g, bf, threads, b, maxrate, ...)")


def depth_warning(codec: str, pix_fmt: str, source_bits: int, chosen: bool) -> str | None:
    """What a source of more than 8 bits keeps: frames are processed as 8-bit RGB or luma, so a 10-bit
    output keeps the format, not finer steps; an 8-bit default output is said so (not when ``chosen``)."""
    if source_bits <= 8:
        return None
    try:
        out_bits = max(c.bits for c in av.VideoFormat(pix_fmt).components)
    except (ValueError, av.error.FFmpegError):
        return None
    if out_bits > 8:
        return (f"the source is {source_bits}-bit: the output is {out_bits}-bit {pix_fmt}, but vidcolor "
                "processes frames at 8 bits per channel, so tonal steps finer than 8-bit are not kept")
    if chosen:
        return None
    return (f"the source is {source_bits}-bit; {codec} writes 8-bit {pix_fmt} (vidcolor processes frames at 8 bits "
            "per channel; use --codec libx265 or --pix-fmt yuv420p10le for a 10-bit file)")


def resolve_pix_fmt(codec: str, pix_fmt: str | None, width: int, height: int,
                    bit_depth: int = 8) -> tuple[str, str | None]:
    """The pixel format a writer encodes with (and a warning when the size forced a change)."""
    if pix_fmt is None:
        return default_pix_fmt(codec, width, height, bit_depth)
    return reconcile_pix_fmt(pix_fmt, width, height)


def yuv420_coding(encoder: str, codec: str, pix_fmt: str | None, meta: VideoMeta) -> tuple[int, bool] | None:
    """(matrix code, full range) when the writer for these settings takes yuv420p planes as they
    are (PyAV encoding yuv420p): stages may then give their frames as planes (``Chunk.yuv``)."""
    if encoder != "pyav":
        return None
    fmt, _ = resolve_pix_fmt(codec, pix_fmt, meta.display_width, meta.display_height, meta.bit_depth)
    return output_coding(meta.color_codes) if fmt == "yuv420p" else None


class WriterBase:
    """Output path, ``.part`` path, container format, pixel format (with the odd-size rule), encoder
    options and provenance tags; ``write`` argument checks. Subclasses encode."""

    def __init__(self, path: str | os.PathLike, meta: VideoMeta, *, codec: str = "libx264", crf: int | None = 18,
                 pix_fmt: str | None = None, options: dict[str, str] | None = None,
                 streams_from: str | os.PathLike | None = None, tags: dict[str, Any] | None = None,
                 width: int | None = None, height: int | None = None) -> None:
        self.path = Path(path)
        self.part = part_path(self.path)
        self.meta = meta
        self.codec = codec
        self.width = width or meta.display_width
        self.height = height or meta.display_height
        self.fmt = output_format(self.path)
        check_video_codec(self.fmt, codec)
        self.warnings: list[str] = []
        chosen = pix_fmt is not None
        pix_fmt, warn = resolve_pix_fmt(codec, pix_fmt, self.width, self.height, meta.bit_depth)
        for w in (warn, depth_warning(codec, pix_fmt, meta.bit_depth, chosen)):
            if w:
                self.warnings.append(w)
        self.pix_fmt = pix_fmt
        self.check_options(options or {})
        self.options = encoder_options(codec, crf, options or {})
        self.streams_from = Path(streams_from) if streams_from else None
        self.tags = tags or {}
        self.frames_written = 0

    def check_options(self, options: dict[str, str]) -> None:
        """Reject ``-e`` options the encoder does not have (``InputError``) before anything is written."""
        names = pyav_option_names(self.codec)
        if names is None:
            raise InputError(f"encoder {self.codec!r} is not available")
        check_encoder_options(self.codec, options, names)

    def metadata(self) -> dict[str, str]:
        """The output container's tags: the source's, then the provenance (see ``output_metadata``)."""
        return output_metadata(self.meta.tags, self.tags, self.meta.path)

    def check_frames(self, frames: np.ndarray, pts: list[int]) -> None:
        """Frames are uint8 (T, H, W, 3) RGB, (T, H, W, 1) full-range grey, or, for an even size,
        (T, H * 3 / 2, W, 1) yuv420p planes coded in ``yuv420_coding(...)`` of this output."""
        planes = self.height % 2 == 0 and self.width % 2 == 0 and frames.shape[1:] == (
            self.height * 3 // 2, self.width, 1)
        if frames.ndim != 4 or frames.dtype != np.uint8 or not (
                planes or (frames.shape[1:3] == (self.height, self.width) and frames.shape[3] in (1, 3))):
            raise ValueError(f"frames must be uint8 (T, {self.height}, {self.width}, 3) RGB, (..., 1) grey or "
                             f"(T, {self.height * 3 // 2}, {self.width}, 1) yuv420p, "
                             f"got {frames.dtype} {tuple(frames.shape)}")
        if len(pts) != frames.shape[0]:
            raise ValueError(f"got {frames.shape[0]} frames but {len(pts)} pts")

    def close(self) -> Path:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError

    def __exit__(self, exc_type, exc, tb) -> None:
        """Complete the output on success; on any error remove the ``.part`` file (never a half file)."""
        if exc_type is None:
            self.close()
        else:
            self.abort()
