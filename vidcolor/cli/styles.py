"""``vidcolor styles``: the styles available, with a one-line description each."""

from __future__ import annotations

import json

import click

from vidcolor.cli.common import handle_errors


@click.command("styles")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@handle_errors
def styles(as_json: bool) -> None:
    """List built-in and user styles (user styles live in $VIDCOLOR_HOME/styles/*.toml;
    any style file can also be passed to `run --style path/to/file.toml`)."""
    from vidcolor.styles import available_styles, builtin_dir

    found = available_styles()
    if as_json:
        click.echo(json.dumps({n: {"description": s.description, "path": s.path,
                                   "stages": [st["type"] for st in s.stages]} for n, s in found.items()}, indent=2))
        return
    from rich.table import Table

    from vidcolor.cli.common import console

    t = Table(show_header=True, header_style="bold")
    t.add_column("style")
    t.add_column("stages")
    t.add_column("description")
    builtin = str(builtin_dir())
    for name, s in sorted(found.items()):
        origin = "" if (s.path or "").startswith(builtin) else " (user)"
        # a colorize stage with ``temporal`` stabilizes its own chroma
        parts = [st["type"] + (" (+ stabilize)" if st.get("temporal") else "") for st in s.stages]
        t.add_row(name + origin, " → ".join(parts), s.description)
    console(stderr=False).print(t)
