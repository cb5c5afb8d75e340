"""Batch: every video of a folder tree through one style, crash-safe, rerunnable, in parallel.

``run_batch(input_dir, output_dir, options)`` reads top to bottom as its steps:

1. find the inputs (comma-separated glob patterns, optionally recursive) and give each its output
   in the mirrored tree under ``output_dir``;
2. lock the output folder (one batch at a time), load its manifest (``manifest.py``) and remove the
   ``.part`` files a killed run left for any of our outputs;
3. plan: an input that is ``done`` with the same settings, unchanged (size, mtime, fingerprint) and
   whose output still exists is skipped; every other one is marked ``pending``;
4. execute the pending inputs with an executor (``LocalExecutor``: worker processes; or
   ``ray_executor.RayExecutor``), saving the manifest after each result: ``done`` or ``failed`` with
   its one-line reason (a bad file never stops the batch);
5. return a ``BatchReport``: one row per input, ``done``, ``skipped`` or ``failed``.

Crash safety: outputs are written as ``NAME.part`` and renamed when complete (``run``), so an output
either is whole or does not exist; the manifest is rewritten atomically; an input that was being
processed when the batch died is still ``pending`` and is redone on the next run. Ctrl-C (or
SIGTERM) stops the workers, which remove their ``.part`` files, saves the manifest and raises
``KeyboardInterrupt``. The batch owns its output tree: it replaces the outputs it redoes.
"""

from __future__ import annotations

import fnmatch
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from vidcolor.errors import InputError, Interrupted, VidcolorError
from vidcolor.io.containers import part_path, work_dir_path
from vidcolor.styles import Style, get_style

from .manifest import MANIFEST_NAME, BatchManifest, Entry, fingerprint, settings_hash, settings_signature

DEFAULT_PATTERNS = ("*.mp4,*.mov,*.mkv,*.m4v,*.avi,*.webm,*.mpg,*.mpeg,*.ts,*.mts,*.m2ts,*.wmv,*.flv,*.3gp,"
                    "*.ogv,*.mxf,*.dv")
# Kept as the output extension; other inputs (webm, avi, ts...) become .mkv, which holds any
# audio/subtitle codec and H.264 (the same rule as ``run``'s default output name).
KEEP_EXTENSIONS = {".mp4", ".mov", ".mkv", ".m4v"}
LOCK_NAME = ".vidcolor-batch.lock"


@dataclass
class BatchOptions:
    """The ``run`` settings applied to every file (see ``vidcolor.pipelines.run.run``)."""

    style: str | Style = "noir"
    overrides: dict[str, Any] = field(default_factory=dict)
    device: str | None = None
    encoder: str = "pyav"
    codec: str = "libx264"
    crf: int | None = 18
    pix_fmt: str | None = None
    encoder_options: dict[str, str] = field(default_factory=dict)
    chunk_size: int = 4
    resumable: bool | None = None
    allow_truncated: bool = False

    def signature(self, style: Style) -> dict[str, Any]:
        """What decides an output's pictures and encoding: a change redoes every file."""
        return settings_signature(style, self.overrides, self.encoder, self.codec, self.crf, self.pix_fmt,
                                  self.encoder_options)


@dataclass
class FileTask:
    """One input to process; paths are absolute; ``threads``: torch intra-op threads (0 = leave)."""

    key: str
    input: str
    output: str
    options: BatchOptions
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
        from vidcolor.pipelines.run import run

        Path(task.output).parent.mkdir(parents=True, exist_ok=True)
        o = task.options
        report = run(task.input, task.output, o.style, overrides=o.overrides, device=o.device, overwrite=True,
                     encoder=o.encoder, codec=o.codec, crf=o.crf, pix_fmt=o.pix_fmt,
                     encoder_options=o.encoder_options, chunk_size=o.chunk_size, resumable=o.resumable,
                     allow_truncated=o.allow_truncated)
    except VidcolorError as exc:
        return FileResult(task.key, "failed", str(exc), seconds=round(time.perf_counter() - started, 3))
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # a bug or a library failure on one file must not stop the batch
        return FileResult(task.key, "failed", f"{type(exc).__name__}: {exc}",
                          seconds=round(time.perf_counter() - started, 3))
    return FileResult(task.key, "done", frames=report.frames, seconds=report.seconds, warnings=report.warnings)


# -- finding inputs ---------------------------------------------------------------------------------------
def find_inputs(input_dir: Path, patterns: str, recursive: bool, exclude: Path | None = None) -> list[Path]:
    """Files under ``input_dir`` whose name matches one of the comma-separated ``patterns``
    (case-insensitive), sorted; hidden files and folders and the ``exclude`` folder are skipped."""
    globs = [p.strip().lower() for p in patterns.split(",") if p.strip()]
    if not globs:
        raise InputError(f"--pattern {patterns!r}: no pattern given")
    found: list[Path] = []
    for root, dirs, files in os.walk(input_dir):
        rootp = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and (exclude is None or (rootp / d).resolve() != exclude))
        for name in files:
            if not name.startswith(".") and any(fnmatch.fnmatchcase(name.lower(), g) for g in globs):
                found.append(rootp / name)
        if not recursive:
            break
    return sorted(found)


def output_names(keys: list[str]) -> dict[str, str]:
    """Relative input path -> relative output path: the same path, with ``.mkv`` for extensions we
    do not keep. When two inputs would share an output (``a.avi``, ``a.webm``), both keep their full
    name (``a.avi.mkv``, ``a.webm.mkv``)."""
    first = {}
    for k in keys:
        p = Path(k)
        first[k] = k if p.suffix.lower() in KEEP_EXTENSIONS else str(p.with_suffix(".mkv"))
    taken: dict[str, int] = {}
    for out in first.values():
        taken[out.lower()] = taken.get(out.lower(), 0) + 1
    return {k: (out if taken[out.lower()] == 1 or Path(k).suffix.lower() in KEEP_EXTENSIONS else k + ".mkv")
            for k, out in first.items()}


def check_outputs_spare_inputs(inputs: list[Path], outputs: list[Path]) -> None:
    """Refuse a batch where an output, its ``.part`` file or its work folder is one of the inputs or
    holds one (output and input trees that overlap): the batch deletes stale ``.part`` files before it
    starts and a resumable run empties its work folder."""
    def identity(p: Path) -> tuple[int, int] | None:
        try:
            st = p.stat()
        except OSError:
            return None
        return st.st_dev, st.st_ino

    by_path = {p.resolve(): p for p in inputs}
    by_inode = {identity(p): p for p in inputs}
    by_inode.pop(None, None)
    works: dict[Path, Path] = {}
    for out in outputs:
        for what, q in (("output", out), ("temporary file", part_path(out)), ("work folder", work_dir_path(out))):
            src = by_path.get(q.resolve()) or by_inode.get(identity(q))
            if src is not None:
                raise InputError(f"{q}: this {what} of an output is the input {src}; refusing to overwrite an "
                                 "input (use an output folder outside the input tree)")
        works[work_dir_path(out).resolve()] = out
    for real, src in by_path.items():
        for parent in real.parents:
            if parent in works:
                raise InputError(f"{works[parent]}: its work folder holds the input {src}; refusing to delete an "
                                 "input (use an output folder outside the input tree)")


# -- executors ---------------------------------------------------------------------------------------------
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


def _interrupt(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


def _worker_main(conn: Any, threads: int, parent_pid: int) -> None:
    """Worker process loop: receive a ``FileTask``, send back a ``FileResult``; ``None`` ends it."""
    _die_with_parent()
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent decides
    signal.signal(signal.SIGTERM, _interrupt)  # the parent's stop: unwind so the writer removes its .part
    if hasattr(signal, "SIGHUP"):  # a closed terminal reaches the whole group: unwind as on SIGTERM
        signal.signal(signal.SIGHUP, _interrupt)
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
                        part_path(task.output).unlink(missing_ok=True)
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
                part_path(w.task.output).unlink(missing_ok=True)
            w.conn.close()


# -- the batch ----------------------------------------------------------------------------------------------
@dataclass
class FileRow:
    """One line of the summary: ``status`` is done (now), skipped (done before) or failed."""

    input: str
    output: str
    status: str
    error: str | None = None
    frames: int | None = None
    seconds: float | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class BatchReport:
    input_dir: str
    output_dir: str
    manifest: str
    executor: str
    settings_hash: str
    files: list[FileRow] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        out = {"done": 0, "skipped": 0, "failed": 0}
        for f in self.files:
            out[f.status] += 1
        return out

    @property
    def ok(self) -> bool:
        return not self.counts["failed"]

    def to_json(self) -> dict[str, Any]:
        return {"input_dir": self.input_dir, "output_dir": self.output_dir, "manifest": self.manifest,
                "executor": self.executor, "settings_hash": self.settings_hash, "counts": self.counts,
                "seconds": self.seconds, "files": [asdict(f) for f in self.files]}


class _OutputLock:
    """An exclusive ``flock`` on ``OUTPUT_DIR/.vidcolor-batch.lock`` for the batch's lifetime: two
    batches writing one manifest would undo each other's records. The kernel drops it when the
    process dies, so a killed batch never leaves a stale lock."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> _OutputLock:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; run one batch per folder
            return self
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._fd)
            self._fd = None
            raise InputError(f"{self.path.parent}: another vidcolor batch is writing to this folder") from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the lock
            self._fd = None


def run_batch(input_dir: str | os.PathLike, output_dir: str | os.PathLike, options: BatchOptions | None = None, *,
              patterns: str = DEFAULT_PATTERNS, recursive: bool = False, executor: Executor | None = None,
              on_file: Callable[[FileRow, int, int], None] | None = None) -> BatchReport:
    """Process every matching video under ``input_dir`` into the mirrored tree under ``output_dir``;
    see the module docstring. ``on_file(row, k, n)`` is called as each file finishes."""
    started = time.perf_counter()
    options = options or BatchOptions()
    # 1. inputs and outputs
    src = Path(input_dir)
    if not src.is_dir():
        raise InputError(f"{src}: no such folder" if not src.exists() else f"{src}: not a folder")
    dst = Path(output_dir)
    if dst.resolve() == src.resolve():
        raise InputError(f"{dst}: the output folder must differ from the input folder")
    style = options.style if isinstance(options.style, Style) else get_style(options.style)
    style.check(options.overrides)  # bad values and unused options fail the batch, not every file
    options = replace(options, style=style)  # workers get the parsed style, not a name to look up
    settings = options.signature(style)
    shash = settings_hash(settings)
    dst.mkdir(parents=True, exist_ok=True)
    inputs = find_inputs(src, patterns, recursive, exclude=dst.resolve())
    if not inputs:
        raise InputError(f"{src}: no file matches {patterns}" + ("" if recursive else " (add --recursive for subfolders)"))
    keys = [p.relative_to(src).as_posix() for p in inputs]
    outputs = output_names(keys)
    executor = executor or LocalExecutor()
    report = BatchReport(input_dir=str(src), output_dir=str(dst), manifest=str(dst / MANIFEST_NAME),
                         executor=executor.name, settings_hash=shash)
    check_outputs_spare_inputs(inputs, [dst / outputs[k] for k in keys])
    rows: dict[str, FileRow] = {}
    with _OutputLock(dst):
        # 2. manifest and leftovers of a killed run
        manifest = BatchManifest.load(dst / MANIFEST_NAME)
        manifest.input_dir, manifest.settings = str(src.resolve()), settings
        for key in keys:
            part_path(dst / outputs[key]).unlink(missing_ok=True)
        # 3. plan
        tasks: list[FileTask] = []
        files: dict[str, Entry] = {}
        for key, path in zip(keys, inputs):
            old = manifest.files.get(key)
            try:
                st = path.stat()
                new = Entry(output=outputs[key], size=st.st_size, mtime_ns=st.st_mtime_ns,
                            fingerprint=fingerprint(path, st.st_size), settings_hash=shash)
            except OSError as exc:
                files[key] = Entry(output=outputs[key], size=0, mtime_ns=0, fingerprint="", settings_hash=shash,
                                   status="failed", error=f"{path}: cannot read ({exc.strerror or exc})")
                rows[key] = FileRow(key, outputs[key], "failed", files[key].error)
                continue
            if old is not None and old.status == "done" and old.same_input(new) and (dst / old.output).is_file():
                files[key] = old
                rows[key] = FileRow(key, old.output, "skipped", frames=old.frames, seconds=old.seconds)
                continue
            files[key] = new
            tasks.append(FileTask(key, str(path.resolve()), str((dst / outputs[key]).resolve()), options))
        manifest.files = files  # inputs that disappeared drop out; their outputs stay
        manifest.save()
        # 4. execute
        total, finished = len(tasks), 0

        def on_result(result: FileResult) -> None:
            nonlocal finished
            e = manifest.files[result.key]
            e.status, e.error, e.frames, e.seconds = result.status, result.error, result.frames, result.seconds
            e.warnings = list(result.warnings)
            manifest.save()
            finished += 1
            rows[result.key] = FileRow(result.key, e.output, result.status, result.error, result.frames,
                                       result.seconds, list(result.warnings))
            if on_file is not None:
                on_file(rows[result.key], finished, total)

        with _sigterm_as_interrupt():
            try:
                if tasks:
                    executor.run(tasks, on_result)
            finally:
                manifest.save()  # unfinished files stay pending
    # 5. report
    report.files = [rows[k] for k in keys]
    report.seconds = round(time.perf_counter() - started, 3)
    return report


class _sigterm_as_interrupt:
    """SIGTERM (a scheduler stopping the job) stops the batch like Ctrl-C: cleanly."""

    def __enter__(self) -> None:
        import threading

        self._old = None
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGTERM, _interrupt)

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)
