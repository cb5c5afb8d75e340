"""``vidcolor batch INPUT_DIR -o OUTPUT_DIR``: every video of a folder tree, rerunnable, in parallel."""

from __future__ import annotations

import json
from typing import Any

import click

from vidcolor.cli.common import STATE, console, handle_errors, processing_options, settings_from_options, warn


def print_summary(report) -> None:
    """A rich table on stderr: one row per input, then the counts."""
    from rich.table import Table

    table = Table(title=f"vidcolor batch: {report.input_dir} -> {report.output_dir}", title_justify="left")
    for col, kw in (("input", {}), ("status", {}), ("frames", {"justify": "right"}), ("s", {"justify": "right"}),
                    ("output / reason", {"overflow": "fold"})):
        table.add_column(col, **kw)
    colours = {"done": "green", "skipped": "dim", "failed": "bold red"}
    for f in report.files:
        table.add_row(f.input, f"[{colours[f.status]}]{f.status}[/]", "" if f.frames is None else str(f.frames),
                      "" if f.seconds is None or f.status == "skipped" else f"{f.seconds:.1f}",
                      f.error if f.status == "failed" else f.output)
    c = report.counts
    out = console()
    out.print(table)
    out.print(f"{c['done']} done, {c['skipped']} skipped (unchanged), {c['failed']} failed "
              f"in {report.seconds:.1f} s; manifest: {report.manifest}")


@click.command("batch")
@click.argument("input_dir", type=click.Path(path_type=str))
@click.option("-o", "--output", "output_dir", required=True, type=click.Path(file_okay=False, path_type=str),
              help="Output folder; the input tree is mirrored inside it, with the manifest vidcolor-batch.json.")
@click.option("--pattern", default=None, metavar="GLOBS",
              help="Comma-separated file name patterns [default: common video extensions, *.mp4,*.mov,...].")
@click.option("-r", "--recursive", is_flag=True, help="Include subfolders.")
@click.option("-j", "--jobs", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Files processed in parallel (local executor); torch threads are divided between them.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: worker processes on this machine; ray: Ray tasks (pip install 'vidcolor[ray]').")
@click.option("--address", help="Ray cluster: auto (the one started here with `ray start`) or HOST:PORT "
                                "[default: a local Ray instance for this run].")
@click.option("--cpus-per-job", type=click.FloatRange(min=0.01), default=1.0, show_default=True,
              help="Ray: CPUs each file task requests (and torch threads it uses).")
@click.option("--gpus-per-job", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Ray: GPUs each file task requests (fractions share a GPU).")
@click.option("--split-seconds", type=click.FloatRange(min=0.01), default=None,
              help="Ray: cut films longer than twice this into segments of this many seconds, processed as "
                   "parallel tasks and joined.")
@processing_options
@click.option("--resumable/--no-resumable", default=None,
              help="Crash-safe segments per file [default: on for files of 10 minutes or more].")
@click.option("--json", "as_json", is_flag=True, help="Print the batch report as JSON on stdout.")
@handle_errors
def batch(input_dir: str, output_dir: str, pattern: str | None, recursive: bool, jobs: int, executor: str,
          address: str | None, cpus_per_job: float, gpus_per_job: float, split_seconds: float | None,
          as_json: bool, **options: Any) -> None:
    """Process every video in INPUT_DIR into the same tree under OUTPUT_DIR.

    A manifest in OUTPUT_DIR records each input's size, mtime, fingerprint, settings and status, so
    a rerun skips what is done and unchanged and redoes the rest (and what a crash interrupted).
    Bad files are reported and the batch goes on. Exit code 0 when every file succeeded, 1 when
    some failed, 130 when interrupted (finished outputs stay; rerun to continue).

    \b
    Examples:
      vidcolor batch reels/ -o graded/ --style noir --recursive --jobs 2
      vidcolor batch reels/ -o graded/ --pattern '*.mov' --json
      vidcolor batch reels/ -o graded/ --executor ray --address auto --cpus-per-job 4
    """
    from vidcolor.pipelines.batch import DEFAULT_PATTERNS, LocalExecutor, run_batch

    if executor == "ray":
        from vidcolor.pipelines.ray_executor import RayExecutor

        if jobs != 1:
            raise click.UsageError("--jobs is for the local executor; with Ray, --cpus-per-job sets the parallelism")

        runner = RayExecutor(address=address, cpus_per_job=cpus_per_job, gpus_per_job=gpus_per_job,
                             split_seconds=split_seconds)
    else:
        for name, value in (("--address", address), ("--split-seconds", split_seconds)):
            if value is not None:
                raise click.UsageError(f"{name} needs --executor ray")
        runner = LocalExecutor(jobs=jobs)
    settings = settings_from_options(options)
    quiet = STATE.quiet or as_json

    def on_file(row, k: int, n: int) -> None:
        if quiet:
            return
        what = f"{row.frames} frames, {row.seconds:.1f} s" if row.status == "done" else row.error
        click.echo(f"vidcolor: [{k}/{n}] {row.status} {row.input} ({what})", err=True)

    report = run_batch(input_dir, output_dir, settings, patterns=pattern or DEFAULT_PATTERNS, recursive=recursive,
                       executor=runner, on_file=on_file)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    elif not STATE.quiet:
        print_summary(report)
    if not report.ok:
        if not as_json:
            warn(f"{report.counts['failed']} of {len(report.files)} files failed")
        raise SystemExit(1)
