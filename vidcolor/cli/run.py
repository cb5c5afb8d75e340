"""``vidcolor run INPUT --style STYLE [-o OUTPUT]``: one video in, one finished video out."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from vidcolor.cli.common import STATE, handle_errors, processing_options, settings_from_options, warn


def make_progress(quiet: bool):
    """Rich progress bar on a terminal; a plain line every few seconds otherwise; nothing when quiet.
    Returns ``(callback, finish)``."""
    if quiet:
        return None, lambda: None
    if sys.stderr.isatty():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[fps]:>6.1f} fps"), TimeRemainingColumn(), transient=False)
        task = bar.add_task("frames", total=None, fps=0.0)
        started = time.perf_counter()
        bar.start()

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total, fps=done / max(time.perf_counter() - started, 1e-6))

        return update, bar.stop
    state = {"last": 0.0, "start": time.perf_counter()}

    def update_plain(done: int, total: int | None) -> None:
        now = time.perf_counter()
        if now - state["last"] >= 5.0:
            state["last"] = now
            fps = done / max(now - state["start"], 1e-6)
            of = f"/{total}" if total else ""
            click.echo(f"vidcolor: {done}{of} frames, {fps:.1f} fps", err=True)

    return update_plain, lambda: None


@click.command("run")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=True, path_type=str))
@click.option("-o", "--output", "output_path", type=click.Path(path_type=str),
              help="Output file [default: INPUT.STYLE.EXT beside the input; same container for "
                   "mp4/mov/mkv inputs, .mkv for others].")
@click.option("--overwrite", is_flag=True, help="Replace OUTPUT if it exists (the input is never overwritten).")
@processing_options
@click.option("--resumable/--no-resumable", default=None,
              help="Write crash-safe segments next to OUTPUT; rerun the same command to resume after a crash "
                   "[default: on for inputs of 10 minutes or more].")
@click.option("--fresh", is_flag=True, help="Discard the work folder of an earlier resumable run and start over.")
@click.option("--keyframes", type=click.Path(exists=True, path_type=str),
              help="Colorize styles: a folder of colour keyframes named by frame number (000120.png) or timecode "
                   "(00-01-23.040.png), or a TOML map; their colour is carried through each shot (see "
                   "`vidcolor keyframes`).")
@click.option("--hints", type=click.Path(exists=True, dir_okay=False, path_type=str),
              help="Colorize styles: a JSON file of colour points, scribbles and polygons on frames, spread along "
                   "luminance edges and carried through each shot.")
@click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON on stdout.")
@handle_errors
def run(input_path: str, output_path: str | None, as_json: bool, **options: Any) -> None:
    """Colorize, stylize or restore one video, keeping its length, timing, sound and subtitles.

    \b
    Examples:
      vidcolor run old_film.mp4 --style noir
      vidcolor run clip.mov --style lut --lut look.cube -o graded.mov
      vidcolor run clip.mp4 --style sepia --codec libx265 --crf 22 -e preset=slow
      vidcolor run film.mp4 --style colorize --keyframes film.keyframes/
      vidcolor run old_film.mp4 --style restore-colorize      # deflicker, dust, degrain, then colour
      vidcolor run old_film.mp4 --style restore --mask window.png
    """
    from vidcolor.pipelines.run import run as run_video

    settings = settings_from_options(options)
    quiet = STATE.quiet or as_json
    update, finish = make_progress(quiet)
    try:
        report = run_video(input_path, output_path, settings, progress=update)
    finally:
        finish()
    for w in report.warnings:
        warn(w)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    elif not STATE.quiet:
        click.echo(f"{report.output}: {report.frames} frames in {report.seconds:.1f} s ({report.fps:.1f} fps)", err=True)
