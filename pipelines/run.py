"""Run one video through a style: ``run(input, output, settings) -> RunReport``.

Reads top to bottom as the steps it takes:
  1. probe the input (a broken file fails here, before anything is written);
  2. choose and check the output path (never the input; ``--overwrite`` to replace);
  3. build the style's stages on the chosen device;
  4. stream (``stream.py``): decoder thread -> chunks of frames -> stages -> encoder thread ->
     ``output.part`` (RGB frames, or the coded luma alone for monochrome styles: ``frames.takes_grey``);
  5. rename ``output.part`` to ``output`` and return a report.
Long inputs (and ``resumable=True``) go to ``segments.run_resumable`` after step 1.
"""

from __future__ import annotations

import os
import time
from typing import Any

from vidcolor.io.probe import probe
from vidcolor.settings import RunSettings, make_settings
from vidcolor.stages.base import chain_output_size
from vidcolor.styles import Style

from . import segments
from .paths import output_for
from .report import RunReport
from .stream import ProgressFn, bound_heap, build_stages, open_writer, pick_device, stream


def run(input_path: str | os.PathLike, output_path: str | os.PathLike | None = None,
        settings: RunSettings | str | Style = "noir", *, progress: ProgressFn | None = None,
        **options: Any) -> RunReport:
    """Colorize or stylize ``input_path`` into ``output_path``; see the module docstring.

    ``settings``: a ``RunSettings`` (``vidcolor.settings.make_settings``), or a style name, path or
    ``Style`` with the settings as keyword ``options`` (``codec="ffv1"``, ``resumable=False``...),
    which go to ``make_settings``. ``settings.resumable``: write crash-safe segments and resume them
    on the next call (``segments.py``); None turns it on for inputs of at least
    ``segments.RESUMABLE_MIN_SECONDS``. ``progress(frames done, total)`` is called as frames are written."""
    started = time.perf_counter()
    settings = make_settings(settings, **options)
    bound_heap()
    # 1. probe: missing, empty, corrupt, audio-only files fail here with a one-line VideoError.
    meta = probe(input_path)
    if settings.resumable is not False and (settings.resumable or segments.is_long(meta)):
        return segments.run_resumable(input_path, output_path, settings, meta=meta, progress=progress)
    # 2. output path
    output = output_for(input_path, output_path, settings)
    # 3. stages
    dev = pick_device(settings.device)
    stages = build_stages(settings, dev)
    tags = settings.tags(stages)
    # 4. stream
    height, width = chain_output_size(stages, meta.display_height, meta.display_width)  # a stage may resize
    with open_writer(settings.encoder, output, meta, queue_size=3, streams_from=input_path, tags=tags,
                     width=width, height=height) as writer:
        done = stream(input_path, meta, stages, dev, settings, lambda frames, pts, _: writer.write(frames, pts),
                      progress=progress)
    # 5. the writer renamed output.part -> output when its context closed without error
    seconds = time.perf_counter() - started
    warnings = done.reader_warnings + list(writer.warnings) + done.stage_warnings
    return RunReport(input=str(input_path), output=str(output), style=settings.style.name, frames=done.frames,
                     seconds=round(seconds, 3), fps=round(done.frames / seconds, 2) if seconds else 0.0,
                     encoder=settings.encoder.backend, codec=settings.encoder.codec, device=str(dev),
                     stages=tags["stages"], warnings=warnings, audio_packets_copied=writer.packets_copied)
