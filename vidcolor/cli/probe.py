"""``vidcolor probe FILE``: streams, timing, size and colour tags of a video."""

from __future__ import annotations

import json

import click

from vidcolor.cli.common import handle_errors


@click.command("probe")
@click.argument("path", metavar="FILE", type=click.Path(path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@handle_errors
def probe(path: str, as_json: bool) -> None:
    """Show what FILE holds: streams, codecs, size (and display size after rotation), exact frame
    rate, variable-frame-rate flag, duration, frame count, colour space and range."""
    from vidcolor.io.probe import probe as probe_file

    meta = probe_file(path)
    if as_json:
        click.echo(json.dumps(meta.to_json(), indent=2, default=str))
        return
    from rich.table import Table

    from vidcolor.cli.common import console

    t = Table(title=meta.path, show_header=False, title_justify="left")
    t.add_column("field", style="bold")
    t.add_column("value")
    fr = meta.frame_rate
    rows = [
        ("container", meta.format),
        ("video", f"{meta.codec} {meta.pix_fmt or ''} ({meta.bit_depth}-bit)"),
        ("size", f"{meta.width}x{meta.height}"),
        ("display size", f"{meta.display_width}x{meta.display_height}"
         + (f" (turned {(360 - meta.rotation) % 360}° clockwise)" if meta.rotation else "")),
        ("frame rate", f"{fr.numerator}/{fr.denominator} ({float(fr):.3f} fps)" + (", variable" if meta.vfr else "")),
        ("time base", f"{meta.time_base.numerator}/{meta.time_base.denominator}"),
        ("duration", f"{meta.duration:.3f} s" if meta.duration is not None else "unknown"),
        ("frames", (str(meta.frame_count) + ("" if meta.frame_count_exact else " (estimated)")) if meta.frame_count else "unknown"),
        ("aspect ratio (SAR)", str(meta.sample_aspect_ratio or "1:1")),
        ("colour", f"space {meta.color_space or '?'}, range {meta.color_range or '?'}, "
                   f"primaries {meta.color_primaries or '?'}, transfer {meta.color_trc or '?'}"),
    ]
    for s in meta.streams:
        rows.append((f"stream #{s.index}", f"{s.type} {s.codec or '?'} {s.detail} {s.language or ''}".strip()))
    for k, v in rows:
        t.add_row(k, v)
    console(stderr=False).print(t)
