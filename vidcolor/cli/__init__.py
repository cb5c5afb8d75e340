"""``vidcolor`` command-line interface: a click group whose commands live one per file and are
imported only when run, so ``vidcolor --help`` stays fast (no torch import)."""

from __future__ import annotations

import importlib
import itertools

import click

from vidcolor import __version__
from vidcolor.cli import signals
from vidcolor.cli.common import STATE, abort, add_verbosity_options

# name -> "module:attribute"; each module holds one thin click command.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("vidcolor.cli.run:run", "Colorize or stylize one video."),
    "batch": ("vidcolor.cli.batch:batch", "Process every video of a folder tree (rerunnable, parallel, Ray)."),
    "probe": ("vidcolor.cli.probe:probe", "Show streams, timing, size and colour tags of a video."),
    "styles": ("vidcolor.cli.styles:styles", "List the available styles."),
    "eval": ("vidcolor.cli.eval:eval_cmd", "Measure temporal stability and colour of an output video."),
    "models": ("vidcolor.cli.models:models", "List, download and import model weights."),
    "train": ("vidcolor.cli.train:train", "Train a colorizer or stylizer on your own footage."),
    "keyframes": ("vidcolor.cli.keyframes:keyframes", "Write each shot's first frame, to colour by hand."),
}


def wants_json(group: click.Group, ctx: click.Context, args: list[str]) -> bool:
    """Whether the command line ``args`` (after ``vidcolor``) asks for JSON on stdout: the command
    it names has a ``--json`` flag that is given, or ``--json -``."""
    command: click.Command = group
    for arg in args:  # follow subcommand names down to the command that runs
        if isinstance(command, click.Group) and not arg.startswith("-"):
            try:
                sub = command.get_command(ctx, arg)
            except Exception:  # noqa: BLE001  (a command that fails to import: no JSON to promise)
                return False
            if sub is not None:
                command = sub
    option = next((p for p in command.params if "--json" in getattr(p, "opts", ())), None)
    if option is None:
        return False
    if getattr(option, "is_flag", False):
        return "--json" in args
    return "--json=-" in args or any(a == "--json" and b == "-" for a, b in itertools.pairwise(args))


def usage_failed(group: click.Group, ctx: click.Context, exc: click.ClickException, args: list[str]) -> None:
    """A click usage error (unknown option, bad value, missing argument) as the one-line error every
    other failure prints, with where to find the usage."""
    message = exc.format_message()
    sub = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and sub is not None:
        message += f" (see `{sub.command_path} --help`)"
    abort(message, exc.exit_code, wants_json(group, ctx, args))


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, _, attr = COMMANDS[name][0].partition(":")
        # -q/-v after the subcommand too (``vidcolor run IN -q``), not only before it
        return add_verbosity_options(getattr(importlib.import_module(module), attr))

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["vidcolor.args"] = list(args)
        try:
            return super().parse_args(ctx, args)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.ClickException as exc:
            usage_failed(self, ctx, exc, list(args))
            raise  # not reached: usage_failed exits

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:  # `vidcolor models`: the group's help, as click shows it
            raise
        except click.ClickException as exc:
            usage_failed(self, ctx, exc, ctx.meta.get("vidcolor.args", []))

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
    signals.install()  # SIGTERM/SIGHUP unwind like Ctrl-C: no .part file left behind
