"""Shared CLI plumbing: one ``abort`` for errors, the console, logging verbosity."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from vidcolor.errors import VidcolorError


class CLIState:
    verbose: int = 0
    quiet: bool = False


STATE = CLIState()


def abort(message: str, code: int = 1) -> NoReturn:
    """Print one line to stderr and exit with ``code`` (2: bad usage/input, 1: failed while processing)."""
    click.echo(f"vidcolor: error: {message}", err=True)
    sys.exit(code)


def console(stderr: bool = True):
    """A rich console; when not writing to a terminal (pipes, logs, CI) use 140 columns, not
    rich's 80, so tables stay readable in files."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else 140
    return Console(stderr=stderr, highlight=False, width=width)


def warn(message: str) -> None:
    if not STATE.quiet:
        click.echo(f"vidcolor: warning: {message}", err=True)


def parse_key_values(pairs: tuple[str, ...], what: str) -> dict[str, str]:
    """``("preset=slow", "tune=film")`` -> dict; a malformed pair is a usage error."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint=what)
        out[key.strip()] = value.strip()
    return out


def handle_errors(func):
    """Decorator for command bodies: VidcolorError -> one line + its exit code; other exceptions ->
    one line + exit 1 (the traceback only with -v); Ctrl-C -> exit 130."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except VidcolorError as exc:
            if STATE.verbose:
                import traceback

                traceback.print_exc()
            abort(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            abort("interrupted", 130)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except Exception as exc:  # a bug or an unexpected library failure: still one line
            if STATE.verbose:
                import traceback

                traceback.print_exc()
            abort(f"{type(exc).__name__}: {exc} (run with -v for the traceback)", 1)

    return wrapper


def processing_options(func):
    """The options every command that processes video takes (``run``, ``batch``): stage overrides,
    device, encoder settings, chunk size. One definition, so the two commands cannot drift apart."""
    options = [
        click.option("--lut", type=click.Path(exists=True, dir_okay=False), help="A .cube 3D LUT file (for --style lut)."),
        click.option("--temporal", type=click.FloatRange(0, 1), help="Temporal stabilizer strength 0..1 (0 = off)."),
        click.option("--render-size", type=click.IntRange(32, 4096), help="Short side the model sees (model styles)."),
        click.option("--weights", help="Weights name or folder for the style's model stage."),
        click.option("--compile", "compile_model", is_flag=True,
                     help="torch.compile the style's model (needs a C++ compiler on CPU; the first chunk "
                          "waits for the compilation, tens of seconds)."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        click.option("--encoder", type=click.Choice(["pyav", "ffmpeg"]), default="pyav", show_default=True,
                     help="pyav: in-process; ffmpeg: the ffmpeg command-line tool (hardware encoders)."),
        click.option("--codec", default="libx264", show_default=True,
                     help="Video encoder: libx264, libx265, prores_ks, ffv1 (or any your ffmpeg has, with "
                          "--encoder ffmpeg)."),
        click.option("--crf", type=click.IntRange(0, 51), default=18, show_default=True, help="Quality for x264/x265 (preset veryfast unless -e preset=...)."),
        click.option("--pix-fmt", help="Output pixel format [default: yuv420p; yuv444p for odd sizes]."),
        click.option("-e", "--encoder-option", "encoder_opts", multiple=True, metavar="KEY=VALUE",
                     help="Encoder option passed through, e.g. -e preset=slow -e tune=film (repeatable)."),
        click.option("--chunk-size", type=click.IntRange(1, 256), default=4, show_default=True,
                     help="Frames per model batch."),
    ]
    for option in reversed(options):
        func = option(func)
    return func
