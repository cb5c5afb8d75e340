"""``vidcolor`` command-line interface: a click group whose commands live one per file and are
imported only when run, so ``vidcolor --help`` stays fast (no torch import)."""

from __future__ import annotations

import importlib

import click

from vidcolor import __version__
from vidcolor.cli.common import STATE

# name -> "module:attribute"; each module holds one thin click command.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("vidcolor.cli.run:run", "Colorize or stylize one video."),
    "batch": ("vidcolor.cli.batch:batch", "Process every video of a folder tree (rerunnable, parallel, Ray)."),
    "probe": ("vidcolor.cli.probe:probe", "Show streams, timing, size and colour tags of a video."),
    "styles": ("vidcolor.cli.styles:styles", "List the available styles."),
    "eval": ("vidcolor.cli.eval:eval_cmd", "Measure temporal stability and colour of an output video."),
    "models": ("vidcolor.cli.models:models", "List, download and import model weights."),
    "train": ("vidcolor.cli.train:train", "Train a colorizer or stylizer on your own footage."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, _, attr = COMMANDS[name][0].partition(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="vidcolor")
@click.option("-v", "--verbose", count=True, help="More detail; -v also shows tracebacks on errors.")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no warnings, only errors.")
def main(verbose: int, quiet: bool) -> None:
    """Colorize and stylize video with GAN generators: streaming, temporally stable, resumable.

    \b
    Examples:
      vidcolor run old_film.mp4 --style noir
      vidcolor run clip.mov --style lut --lut teal_orange.cube -o graded.mov
      vidcolor probe clip.mkv --json
    """
    STATE.verbose = verbose
    STATE.quiet = quiet
