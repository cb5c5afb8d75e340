"""``vidcolor models``: list, show, download and import model weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from vidcolor.cli.common import STATE, console, handle_errors, warn


@click.group("models")
def models() -> None:
    """List, download and import model weights.

    \b
    Examples:
      vidcolor models list
      vidcolor models pull colorize-eccv16
      vidcolor models import latest_net_G.pth --arch resnet_9blocks --name my_look --task stylize
    """


def _status(name: str) -> tuple[str, str | None]:
    """("installed" | "imported, not pulled" | "missing" | "not downloaded", folder or None).

    "imported, not pulled": a downloadable model's name holding a file imported by hand (older
    vidcolor versions allowed it), not the registry's download."""
    from vidcolor.errors import WeightsError
    from vidcolor.models.pretrained import read_config, resolve_weights
    from vidcolor.models.weights import WEIGHTS

    try:
        folder = resolve_weights(name)
        entry = WEIGHTS.get(name)
        if entry is not None and entry.url and not read_config(folder).get("meta", {}).get("source_url"):
            return "imported, not pulled", str(folder)
        return "installed", str(folder)
    except WeightsError:
        entry = WEIGHTS.get(name)
        return ("missing" if entry is not None and entry.package else "not downloaded"), None


def _rows() -> list[dict[str, Any]]:
    from vidcolor.models.importers import checksum_status
    from vidcolor.models.pretrained import list_cached, read_config
    from vidcolor.models.weights import WEIGHTS

    rows = []
    for entry in WEIGHTS.values():
        status, folder = _status(entry.name)
        rows.append({"name": entry.name, "task": entry.task, "arch": entry.arch, "source": entry.source,
                     "status": status, "params": entry.meta.get("params"), "description": entry.description,
                     "folder": folder, "checksum": checksum_status(entry.name)["kind"]})
    for name in list_cached():
        if name in WEIGHTS:
            continue
        from vidcolor.models.pretrained import cache_dir

        cfg = read_config(cache_dir() / name)
        rows.append({"name": name, "task": cfg["task"], "arch": cfg["arch"], "source": "imported",
                     "status": "installed", "params": cfg.get("meta", {}).get("params"),
                     "description": cfg.get("meta", {}).get("description", ""), "folder": str(cache_dir() / name),
                     "checksum": checksum_status(name)["kind"]})
    return rows


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def list_cmd(as_json: bool) -> None:
    """List registered and imported weights and whether they are installed."""
    rows = _rows()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    from rich.table import Table

    table = Table()
    for col in ("name", "task", "arch", "source", "status", "params", "sha256"):
        table.add_column(col, no_wrap=True)
    table.add_column("description", ratio=1)
    for r in rows:
        params = f"{r['params'] / 1e6:.1f}M" if r["params"] else "?"
        table.add_row(r["name"], r["task"], r["arch"], r["source"], r["status"], params, r["checksum"],
                      r["description"])
    console(stderr=False).print(table)


@models.command("info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@handle_errors
def info_cmd(name: str, as_json: bool) -> None:
    """Show one weights entry: source, checksum (pinned, recorded on first download, or not yet), meta,
    installed config."""
    from dataclasses import asdict

    from vidcolor.errors import InputError
    from vidcolor.models.importers import checksum_status
    from vidcolor.models.pretrained import read_config
    from vidcolor.models.weights import WEIGHTS

    info: dict[str, Any] = {"name": name}
    if name in WEIGHTS:
        info["entry"] = asdict(WEIGHTS[name])
    status, folder = _status(name)
    info["status"], info["folder"] = status, folder
    if folder:
        info["config"] = read_config(folder)
    if "entry" not in info and not folder:
        raise InputError(f"unknown weights {name!r} (see `vidcolor models list`)")
    info["checksum"] = checksum_status(name)
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    out = console(stderr=False)
    out.print(f"[bold]{name}[/bold]  {status}" + (f"  ({folder})" if folder else ""))
    out.print(f"  {info['checksum']['text']}", soft_wrap=True)  # one line, greppable
    entry = info.get("entry") or {}
    for key in ("description", "task", "arch", "kwargs", "url", "sha256_prefix", "l_norm", "ab_scale"):
        if entry.get(key) not in (None, {}, ""):
            out.print(f"  {key}: {entry[key]}")
    meta = {**entry.get("meta", {}), **info.get("config", {}).get("meta", {})}
    for key, value in meta.items():
        out.print(f"  {key}: {value}")


@models.command("pull")
@click.argument("name")
@click.option("--force", is_flag=True, help="Download and convert again even if present.")
@handle_errors
def pull_cmd(name: str, force: bool) -> None:
    """Download registered weights and convert them into the cache.

    The download is checked against the pinned sha256, or against the one recorded on the first
    download (trust on first use: the first download's sha256 is recorded and later ones must match).
    """
    from vidcolor.models.importers import checksum_file, pull_weights

    result, check = pull_weights(name, force=force, progress=None if not STATE.quiet else False)
    if check == "first":
        warn(f"no published sha256 for {name!r}: trusting this first download (sha256 {result.sha256}, recorded in "
             f"{checksum_file(name)}; later downloads must match it)")
    elif check == "prefix":
        warn(f"only a sha256 prefix is published for {name!r} (checked); full sha256 {result.sha256} recorded in "
             f"{checksum_file(name)}, later downloads must match it")
    click.echo(f"{name}: installed in {result.folder}")


@models.command("import")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Name for the weights and the style (e.g. my_look).")
@click.option("--arch", default=None, help="unet | resnet | eccv16 | siggraph17 | unet_256 | unet_128 | "
                                           "resnet_9blocks | resnet_6blocks (default: detected from the keys).")
@click.option("--task", type=click.Choice(["colorize", "stylize"]), default=None,
              help="Default: from the channels (1->2 colorize, 3->3 stylize).")
@click.option("--force", is_flag=True, help="Replace existing weights and style of that name (your own import or export).")
@handle_errors
def import_cmd(path: Path, name: str, arch: str | None, task: str | None, force: bool) -> None:
    """Convert a checkpoint (.pth) into vidcolor weights and a style of the same name.

    Only plain tensors are read (torch.load weights_only=True): pickles that would run code are refused.
    Names of registered weights and built-in styles are reserved.
    """
    from vidcolor.models.importers import import_checkpoint

    result = import_checkpoint(path, name=name, arch=arch, task=task, overwrite=force)
    click.echo(f"{name}: {result.task} weights ({result.arch}, {result.kwargs}) in {result.folder}")
    if result.style_path:
        click.echo(f"style written to {result.style_path}: vidcolor run VIDEO --style {name}")
