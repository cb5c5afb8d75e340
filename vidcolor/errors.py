"""Exceptions that the CLI turns into one-line messages and exit codes.

Exit codes follow the CLI contract: 2 for bad usage or unreadable input (the user can fix the
call), 1 for a failure while processing.
"""

from __future__ import annotations


class VidcolorError(Exception):
    """Base class: a failure the user should see as one line, without a traceback."""

    exit_code = 1


class InputError(VidcolorError):
    """Bad usage or input that cannot be used at all (missing file, unknown style, ...)."""

    exit_code = 2


class VideoError(InputError):
    """A video file that cannot be probed or decoded. The message names the file and position."""


class ProcessingError(VidcolorError):
    """A failure while processing valid input (encoder error, disk full, ...)."""

    exit_code = 1


class WeightsError(InputError):
    """Model weights that are missing, corrupt or do not fit the architecture."""


class Interrupted(KeyboardInterrupt):
    """A stop signal (SIGTERM, SIGHUP) delivered as Ctrl-C is: the same unwinding and clean-up, and
    the exit code 128 + the signal's number."""

    def __init__(self, signum: int) -> None:
        import signal

        super().__init__(signum)
        self.signum = signum
        self.exit_code = 128 + signum
        self.message = f"interrupted ({signal.Signals(signum).name})"
