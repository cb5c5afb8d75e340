"""``vidcolor keyframes FILM [-o DIR]``: the first frame of every shot as grey PNGs and a contact sheet,
for a colourist to paint and pass back with ``vidcolor run FILM --style colorize --keyframes DIR``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from vidcolor.cli.common import STATE, handle_errors


@click.command("keyframes")
@click.argument("film", metavar="FILM", type=click.Path(path_type=str))
@click.option("-o", "--output", "out_dir", type=click.Path(path_type=str),
              help="Folder for the images [default: FILM's name with .keyframes beside it: clip.keyframes/].")
@click.option("--every", type=click.FloatRange(0, min_open=True), metavar="SECONDS",
              help="Also a frame every SECONDS inside each shot (none closer than SECONDS/2 to a cut).")
@click.option("--no-contact-sheet", "no_sheet", is_flag=True, help="Do not write contact-sheet.jpg.")
@click.option("--force", is_flag=True,
              help="Replace keyframe images already in the folder (they may be coloured).")
@click.option("--allow-truncated", is_flag=True,
              help="Use what decodes of a truncated or damaged film instead of failing.")
@click.option("--json", "as_json", is_flag=True, help="Print the written files as JSON on stdout.")
@handle_errors
def keyframes(film: str, out_dir: str | None, every: float | None, no_sheet: bool, force: bool,
              allow_truncated: bool, as_json: bool) -> None:
    """Write the first frame of every shot of FILM (and with --every, more) as grey PNGs named by
    frame number (000120.png), plus contact-sheet.jpg with every frame's number and timecode.
    Colour them in any image editor, keeping the names, then run
    `vidcolor run FILM --style colorize --keyframes DIR`. Images already in DIR are never replaced
    without --force.

    \b
    Examples:
      vidcolor keyframes old_film.mp4 -o kf/
      vidcolor keyframes old_film.mp4 -o kf/ --every 10
    """
    from vidcolor.cli.run import make_progress
    from vidcolor.guides.keyframes import SHEET_PREFIX, extract_keyframes, frame_times
    from vidcolor.io.probe import probe

    meta = probe(film)
    folder = Path(out_dir) if out_dir else Path(film).with_suffix(".keyframes")
    update, finish = make_progress(STATE.quiet or as_json)
    try:
        written = extract_keyframes(film, meta, folder, every=every, contact_sheet=not no_sheet,
                                    overwrite=force, progress=update, allow_truncated=allow_truncated)
    finally:
        finish()
    frames = [p for p in written if not p.name.startswith(SHEET_PREFIX)]
    sheets = [p for p in written if p.name.startswith(SHEET_PREFIX)]
    if as_json:
        times = frame_times(meta) if meta.vfr else []
        numbers = [int(p.stem) for p in frames]
        seconds = [times[f] if f < len(times) else float(f / meta.frame_rate) for f in numbers]
        rows = [{"frame": f, "seconds": round(t, 3), "path": str(p)}
                for f, t, p in zip(numbers, seconds, frames)]
        click.echo(json.dumps({"film": film, "folder": str(folder), "keyframes": rows,
                               "contact_sheets": [str(p) for p in sheets]}, indent=2))
        return
    for p in written:
        click.echo(str(p))
    if not STATE.quiet:
        click.echo(f"vidcolor: {len(frames)} keyframe images in {folder}; colour the ones you want (keep the "
                   f"names), then: vidcolor run {film} --style colorize --keyframes {folder}", err=True)
