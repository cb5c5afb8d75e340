"""SIGTERM and SIGHUP stop a command the way Ctrl-C does.

Python turns Ctrl-C into ``KeyboardInterrupt``, which unwinds the main thread: the writer removes its
``.part`` file, a batch stops its workers and saves its manifest. SIGTERM (a scheduler, ``kill``,
``timeout``) and SIGHUP (a closed terminal) would kill the process where it stands and leave the
``.part`` behind; these handlers raise ``Interrupted`` instead, and the CLI exits 128 + the signal.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

from vidcolor.errors import Interrupted

STOP_SIGNALS = ("SIGTERM", "SIGHUP")


def _stop(signum: int, frame: FrameType | None) -> None:
    # once: a second signal while the first one unwinds must not cut the clean-up short
    for name in STOP_SIGNALS:
        signal.signal(getattr(signal, name), signal.SIG_IGN)
    raise Interrupted(signum)


def install() -> None:
    """Raise ``Interrupted`` on SIGTERM and SIGHUP in the main thread (signals a parent set to be
    ignored, as ``nohup`` does for SIGHUP, stay ignored)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for name in STOP_SIGNALS:
        sig = getattr(signal, name, None)  # Windows has no SIGHUP
        if sig is not None and signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, _stop)
