"""Output paths of a run: the default name beside the input, and the checks before anything is written."""

from __future__ import annotations

import os
from pathlib import Path

from vidcolor.io.containers import check_output_path
from vidcolor.settings import RunSettings

# Extensions kept for the default output name; others (webm, avi...) become .mkv, which holds
# any audio and subtitle codec and H.264.
KEEP_EXTENSIONS = {".mp4", ".mov", ".mkv", ".m4v"}


def default_output(input_path: str | os.PathLike, style: str) -> Path:
    """``film.mp4`` + ``noir`` -> ``film.noir.mp4`` beside the input."""
    p = Path(input_path)
    ext = p.suffix.lower() if p.suffix.lower() in KEEP_EXTENSIONS else ".mkv"
    tag = Path(style).stem if style.endswith(".toml") else style
    return p.with_name(f"{p.stem}.{tag}{ext}")


def output_for(input_path: str | os.PathLike, output_path: str | os.PathLike | None, settings: RunSettings) -> Path:
    """The output path, the one given or ``default_output``, after ``check_output_path``: an extension
    we can write, never the input, an existing file only with ``settings.overwrite``."""
    output = Path(output_path) if output_path else default_output(input_path, settings.style.name)
    return check_output_path(input_path, output, settings.overwrite)
