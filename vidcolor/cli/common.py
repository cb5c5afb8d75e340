"""Shared CLI plumbing: one ``abort`` for errors, the console, logging verbosity."""

from __future__ import annotations

import json
import re
import sys
from typing import NoReturn

import click

from vidcolor.errors import VidcolorError


class CLIState:
    verbose: int = 0
    quiet: bool = False


STATE = CLIState()

# "error:" / "Error:" / "vidcolor: error:" that a library or a wrapped message already put in front
_ERROR_PREFIX = re.compile(r"^(?:vidcolor:\s*)?error\s*:\s*", re.IGNORECASE)


def error_text(message: object) -> str:
    """``message`` as the text of one error line: whitespace (newlines too) collapsed to single
    spaces and any leading "error:" removed, so ``abort`` prints the prefix exactly once."""
    text = " ".join(str(message).split())
    while (m := _ERROR_PREFIX.match(text)) and m.end() < len(text):
        text = text[m.end():]
    return text or "unknown error"


def abort(message: str, code: int = 1, as_json: bool = False) -> NoReturn:
    """Print one line ``vidcolor: error: MESSAGE`` to stderr and exit with ``code`` (2: bad usage or
    input, 1: failed while processing, 130: interrupted). ``as_json``: the command was asked for JSON
    on stdout, so stdout also gets ``{"error": MESSAGE, "exit_code": CODE}``."""
    text = error_text(message)
    if as_json:
        click.echo(json.dumps({"error": text, "exit_code": code}))
    click.echo(f"vidcolor: error: {text}", err=True)
    sys.exit(code)


def json_to_stdout(params: dict) -> bool:
    """True when a command's parameters ask for JSON on stdout: a ``--json`` flag (``as_json``) or
    a ``--json PATH`` of ``-`` (``json_path``)."""
    return params.get("as_json") is True or params.get("json_path") == "-"


def _add_verbose(ctx: click.Context, param: click.Parameter, value: int) -> None:
    STATE.verbose += value


def _set_quiet(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    STATE.quiet = STATE.quiet or value


def add_verbosity_options(command: click.Command) -> click.Command:
    """Give ``command`` (and its subcommands) ``-v/--verbose`` and ``-q/--quiet``, which set ``STATE``
    like the group's own: ``vidcolor run IN -q`` works as ``vidcolor -q run IN``. Idempotent."""
    if not any("--quiet" in getattr(p, "opts", ()) for p in command.params):
        command.params += [
            click.Option(["-v", "--verbose"], count=True, expose_value=False, callback=_add_verbose,
                         help="More detail; -v also shows tracebacks on errors."),
            click.Option(["-q", "--quiet"], is_flag=True, expose_value=False, callback=_set_quiet,
                         help="No progress and no warnings, only errors."),
        ]
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_verbosity_options(sub)
    return command


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
    """Decorator for command bodies: VidcolorError -> one line + its exit code; an OSError (disk
    full, permission denied) or MemoryError -> one line + exit 1; other exceptions (bugs) -> one line
    with the exception's type + exit 1 (the traceback only with -v); Ctrl-C -> exit 130. With JSON
    on stdout (``json_to_stdout``), the error is also printed there as a JSON object."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        as_json = json_to_stdout(kwargs)
        try:
            return func(*args, **kwargs)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except KeyboardInterrupt as exc:  # Ctrl-C: 130; SIGTERM/SIGHUP (``Interrupted``): 128 + signal
            abort(getattr(exc, "message", "interrupted"), getattr(exc, "exit_code", 130), as_json)
        except Exception as exc:  # noqa: BLE001  (every failure is one line; bugs name their type)
            if STATE.verbose:
                import traceback

                traceback.print_exc()
            if isinstance(exc, VidcolorError):
                abort(str(exc), exc.exit_code, as_json)
            if isinstance(exc, OSError) and exc.strerror:
                abort(f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror, 1, as_json)
            if isinstance(exc, MemoryError):
                abort("out of memory", 1, as_json)
            kind = type(exc).__name__
            if kind == "error":  # cv2.error, struct.error: "error: error: ..." without the module's name
                kind = f"{type(exc).__module__}.{kind}"
            abort(f"{kind}: {exc} (run with -v for the traceback)", 1, as_json)

    return wrapper


def check_pix_fmt(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--pix-fmt``: a pixel format FFmpeg knows, else a usage error before any decoding."""
    if value is None:
        return value
    import av

    try:
        av.VideoFormat(value)
    except ValueError:
        raise click.BadParameter(f"unknown pixel format {value!r} (e.g. yuv420p, yuv444p, yuv420p10le)") from None
    return value


def _key_values(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict[str, str]:
    return parse_key_values(value, "-e")


# The --flow choices, spelled here so --help needs no torch (vidcolor.flow.FLOW_CHOICES; a test keeps them equal).
FLOW_CHOICES = ("auto", "dis", "raft_small", "raft_large")
# The --precision choices (vidcolor.models.runtime.PRECISIONS; a test keeps them equal).
PRECISION_CHOICES = ("auto", "fp32", "fp16", "bf16")


def processing_options(func):
    """The options every command that processes video takes (``run``, ``batch``): the style, stage
    overrides, device, encoder settings, chunk size. One definition, so the two commands cannot drift
    apart; each option's name is its ``vidcolor.settings.make_settings`` keyword, and the command
    passes them on with ``settings_from_options``."""
    options = [
        click.option("-s", "--style", default="noir", show_default=True,
                     help="Style name (see `vidcolor styles`) or path to a style .toml file."),
        click.option("--lut", type=click.Path(exists=True, dir_okay=False), help="A .cube 3D LUT file (for --style lut)."),
        click.option("--temporal", type=click.FloatRange(0, 1), help="Temporal stabilizer strength 0..1 (0 = off)."),
        click.option("--flow", type=click.Choice(FLOW_CHOICES),
                     help="Optical flow of the temporal stabilizer [default: auto: RAFT on a GPU when its weights "
                          "are cached, DIS otherwise]."),
        click.option("--render-size", type=click.IntRange(32, 4096), help="Short side the model sees (model styles)."),
        click.option("--weights", help="Weights name or folder for the style's model stage."),
        click.option("--precision", type=click.Choice(PRECISION_CHOICES),
                     help="The model's arithmetic [default: auto: fp16 autocast on CUDA, bf16 on CPUs with "
                          "native bf16, else fp32] (model styles)."),
        click.option("--compile", "compile", is_flag=True,
                     help="torch.compile the style's model (needs a C++ compiler on CPU; the first chunk "
                          "waits for the compilation, tens of seconds)."),
        click.option("--keep-color", "keep_color", is_flag=True,
                     help="Colorize styles: shots whose input already has colour keep it (output = input "
                          "frame), grey shots are colorized; decided at the first frame of each shot (scene "
                          "cuts as the stabilizer finds them). Takes RGB frames: slower than a plain run."),
        click.option("--mask", metavar="FILE",
                     help="Apply the style inside a region only; outside it the frames are the input's, bit for "
                          "bit. FILE: a PNG (grey or alpha, resized to the frame), a mask video (frame i masks "
                          "frame i) or a TOML of rectangles/polygons per frame range (docs/restoration.md)."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N."),
        click.option("--encoder", type=click.Choice(["pyav", "ffmpeg"]), default="pyav", show_default=True,
                     help="pyav: in-process; ffmpeg: the ffmpeg command-line tool (hardware encoders)."),
        click.option("--codec", default="libx264", show_default=True,
                     help="Video encoder: libx264, libx265, prores_ks, ffv1 (or any your ffmpeg has, with "
                          "--encoder ffmpeg)."),
        click.option("--crf", type=click.IntRange(0, 51), default=18, show_default=True, help="Quality for x264/x265 (preset veryfast unless -e preset=...)."),
        click.option("--pix-fmt", callback=check_pix_fmt,
                     help="Output pixel format [default: yuv420p; yuv444p for odd sizes]."),
        click.option("-e", "--encoder-option", "encoder_options", multiple=True, metavar="KEY=VALUE", callback=_key_values,
                     help="Encoder option passed through, e.g. -e preset=slow -e tune=film (repeatable)."),
        click.option("--chunk-size", type=click.IntRange(1, 256), default=4, show_default=True,
                     help="Frames per model batch."),
        click.option("--allow-truncated", is_flag=True,
                     help="Encode what decodes of a truncated or damaged input, with a warning, instead of "
                          "failing (skips packets that do not decode)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def settings_from_options(options: dict):
    """The ``RunSettings`` of a ``run`` or ``batch`` command from its click parameters (those of
    ``processing_options`` and the command's own run settings): built once, style checked, an option
    the style does not read refused (an ``InputError``: exit code 2)."""
    from vidcolor.settings import make_settings

    return make_settings(**options)
