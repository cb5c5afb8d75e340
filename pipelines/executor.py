"""Batch executors: where the files of a batch are processed, one ``FileTask`` at a time.

``LocalExecutor`` runs them in spawned worker processes on this machine; ``ray_executor.RayExecutor``
as Ray tasks. Both call ``execute_task`` with the task's ``RunSettings`` as the batch built them and
report a ``FileResult`` per file to the batch's main process, which alone writes the manifest.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from vidcolor.errors import InputError, Interrupted, VidcolorError
from vidcolor.io.containers import remove_part
from vidcolor.settings import RunSettings


@dataclass
class FileTask:
    """One input to process; paths are absolute; ``threads``: torch intra-op threads (0 = leave)."""

    key: str
    input: str
    output: str
    settings: RunSettings
    threads: int = 0


@dataclass
class FileResult:
    key: str
    status: str  # done | failed
    error: str | None = None
    frames: int | None = None
    seconds: float | None = None
    warnings: list[str] = field(default_factory=list)


def execute_task(task: FileTask) -> FileResult:
    """Run one file; every failure becomes a ``failed`` result with a one-line reason.
    Runs in a worker process or a Ray task, never in the batch's main process."""
    started = time.perf_counter()
    try:
        if task.threads:
            import torch

            torch.set_num_threads(task.threads)
        from .run import run  # torch: in the worker, never in the batch's main process

        Path(task.output).parent.mkdir(parents=True, exist_ok=True)
        report = run(task.input, task.output, task.settings)
    except VidcolorError as exc:
        return FileResult(task.key, "failed", str(exc), seconds=round(time.perf_counter() - started, 3))
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # a bug or a library failure on one file must not stop the batch
        return FileResult(task.key, "failed", f"{type(exc).__name__}: {exc}",
                          seconds=round(time.perf_counter() - started, 3))
    return FileResult(task.key, "done", frames=report.frames, seconds=report.seconds, warnings=report.warnings)


class Executor(Protocol):
    name: str

    def run(self, tasks: list[FileTask], on_result: Callable[[FileResult], None]) -> None:
        """Run every task, calling ``on_result`` in this process as each finishes. On
        ``KeyboardInterrupt`` stop what runs, remove its ``.part`` files, and re-raise."""


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _die_with_parent() -> None:
    """Linux: have the kernel SIGKILL this worker when the batch process dies, even by SIGKILL, so
    an orphan never keeps writing an output that the next run is about to redo."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            PR_SET_PDEATHSIG = 1
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass


def raise_interrupted(signum: int, frame: Any) -> None:
    """A signal handler that unwinds like Ctrl-C (``Interrupted``: exit code 128 + signal)."""
    raise Interrupted(signum)


def _worker_main(conn: Any, threads: int, parent_pid: int) -> None:
    """Worker process loop: receive a ``FileTask``, send back a ``FileResult``; ``None`` ends it."""
    _die_with_parent()
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent decides
    signal.signal(signal.SIGTERM, raise_interrupted)  # the parent's stop: unwind so the writer removes its .part
    if hasattr(signal, "SIGHUP"):  # a closed terminal reaches the whole group: unwind as on SIGTERM
        signal.signal(signal.SIGHUP, raise_interrupted)
    import torch

    torch.set_num_threads(threads)
    while True:
        try:
            task = conn.recv()
            if task is None:
                return
            conn.send(execute_task(task))
        except (EOFError, KeyboardInterrupt, BrokenPipeError):
            return


@dataclass
class _Worker:
    proc: Any
    conn: Any
    task: FileTask | None = None


class LocalExecutor:
    """Runs files in ``jobs`` worker processes (spawned: no forked torch or decoder threads), with
    ``threads`` torch threads each (default: the cores divided between them, at least 1). A worker
    that dies (a decoder crash) fails only its file and is replaced."""

    name = "local"

    def __init__(self, jobs: int = 1, threads: int | None = None) -> None:
        if jobs < 1:
            raise InputError(f"--jobs must be >= 1, got {jobs}")
        self.jobs = jobs
        self.threads = threads or max(1, cpu_count() // jobs)

    def _spawn(self, ctx: Any) -> _Worker:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker_main, args=(child, self.threads, os.getpid()), daemon=True,
                           name="vidcolor-batch-worker")
        proc.start()
        child.close()
        return _Worker(proc, parent)

    def run(self, tasks: list[FileTask], on_result: Callable[[FileResult], None]) -> None:
        import multiprocessing as mp
        from multiprocessing.connection import wait

        ctx = mp.get_context("spawn")
        queue = deque(tasks)
        workers: list[_Worker] = []
        try:
            while queue or any(w.task for w in workers):
                for w in workers:  # keep every worker busy
                    if w.task is None and queue:
                        w.task = queue.popleft()
                        w.conn.send(w.task)
                while queue and len(workers) < self.jobs:
                    w = self._spawn(ctx)
                    w.task = queue.popleft()
                    w.conn.send(w.task)
                    workers.append(w)
                busy = [w for w in workers if w.task is not None]
                ready = wait([w.conn for w in busy] + [w.proc.sentinel for w in busy])
                for w in busy:
                    if w.conn not in ready and w.proc.sentinel not in ready:
                        continue
                    result: FileResult | None = None
                    try:
                        if w.conn.poll():
                            result = w.conn.recv()
                    except (EOFError, OSError):
                        result = None
                    task, w.task = w.task, None
                    assert task is not None
                    if result is None:  # the worker died with the file (segfault, OOM killer)
                        w.proc.join(timeout=5)
                        remove_part(task.output)
                        workers.remove(w)
                        code = w.proc.exitcode
                        why = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                        result = FileResult(task.key, "failed", f"worker process died ({why})")
                    on_result(result)
        finally:
            self._stop(workers)

    def _stop(self, workers: list[_Worker]) -> None:
        """Idle workers get the end message; busy ones SIGTERM (they unwind and remove their .part)."""
        for w in workers:
            try:
                if w.task is None:
                    w.conn.send(None)
                else:
                    w.proc.terminate()
            except (OSError, ValueError):
                pass
        for w in workers:
            w.proc.join(timeout=10)
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join(timeout=5)
            if w.task is not None:  # belt and braces: no partial file survives an interrupted file
                remove_part(w.task.output)
            w.conn.close()
