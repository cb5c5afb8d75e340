"""What both encoder backends share: output settings decided before the first frame, and the frame check."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from vidcolor.io.containers import (
    check_video_codec,
    default_pix_fmt,
    output_format,
    part_path,
    reconcile_pix_fmt,
)
from vidcolor.io.probe import VideoMeta


# x264/x265 preset unless ``-e preset=...`` says otherwise. Measured on an 854x480 Tears of Steel
# excerpt (240 frames, crf 18, ffmpeg CLI, 2 cores): medium 79 frames/s, 48.9 dB PSNR / SSIM 0.9942
# against the source, 2.28 MB; veryfast 182 frames/s, 46.9 dB / 0.9922, 2.19 MB. Encoding at medium
# costs more CPU per frame than the whole colorize style, so the default is veryfast; archive
# masters can ask for ``-e preset=slow``.
DEFAULT_X264_PRESET = "veryfast"


def encoder_options(codec: str, crf: int | None, extra: dict[str, str]) -> dict[str, str]:
    opts: dict[str, str] = {}
    if codec in ("libx264", "libx265"):
        opts["preset"] = DEFAULT_X264_PRESET
        if crf is not None:
            opts["crf"] = str(crf)
    if codec == "libx265":
        opts.setdefault("x265-params", "log-level=error")
    if codec == "prores_ks":
        opts.setdefault("profile", "3")  # ProRes 422 HQ
    opts.update(extra)
    return opts


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
        if pix_fmt is None:
            pix_fmt, warn = default_pix_fmt(codec, self.width, self.height, meta.bit_depth)
        else:
            pix_fmt, warn = reconcile_pix_fmt(pix_fmt, self.width, self.height)
        if warn:
            self.warnings.append(warn)
        self.pix_fmt = pix_fmt
        self.options = encoder_options(codec, crf, options or {})
        self.streams_from = Path(streams_from) if streams_from else None
        self.tags = tags or {}
        self.frames_written = 0

    def check_frames(self, frames: np.ndarray, pts: list[int]) -> None:
        if (frames.ndim != 4 or frames.shape[1:3] != (self.height, self.width) or frames.shape[3] not in (1, 3)
                or frames.dtype != np.uint8):
            raise ValueError(f"frames must be uint8 (T, {self.height}, {self.width}, 3) RGB or (..., 1) grey, "
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
