"""Batch: every video of a folder tree through one style, crash-safe, rerunnable, in parallel.

``run_batch(input_dir, output_dir, settings)`` reads top to bottom as its steps:

1. find the inputs (comma-separated glob patterns, optionally recursive) and give each its output
   in the mirrored tree under ``output_dir``;
2. lock the output folder (one batch at a time), load its manifest (``manifest.py``) and remove the
   ``.part`` files a killed run left for any of our outputs;
3. plan: an input that is ``done`` with the same settings, unchanged (size, mtime, fingerprint) and
   whose output still exists is skipped; every other one is marked ``pending``. An input with a
   ``NAME.keyframes/`` folder beside it (``vidcolor keyframes`` makes one) is colorized with those
   keyframes when the style reads them (:func:`keyframes_beside`); the folder's file names, sizes and
   times are part of the input's fingerprint, so repainted keyframes redo the file;
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
import hashlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from vidcolor.errors import InputError
from vidcolor.io.containers import part_path, remove_part, work_dir_path
from vidcolor.settings import RunSettings, make_settings

from .manifest import MANIFEST_NAME, BatchManifest, Entry, fingerprint, settings_hash
from .executor import Executor, FileResult, FileTask, LocalExecutor, raise_interrupted
from .paths import KEEP_EXTENSIONS

DEFAULT_PATTERNS = ("*.mp4,*.mov,*.mkv,*.m4v,*.avi,*.webm,*.mpg,*.mpeg,*.ts,*.mts,*.m2ts,*.wmv,*.flv,*.3gp,"
                    "*.ogv,*.mxf,*.dv")
LOCK_NAME = ".vidcolor-batch.lock"


# -- finding inputs ---------------------------------------------------------------------------------------
def keyframes_beside(path: Path, settings: RunSettings) -> tuple[RunSettings, str]:
    """``settings`` for input ``path`` with the keyframes of the folder ``NAME.keyframes/`` beside it
    (when it exists, the settings name no keyframes of their own and the style reads them), and a
    fingerprint of that folder's files ("" without one)."""
    from vidcolor.settings import FrozenMap

    folder = path.with_suffix(".keyframes")
    if not folder.is_dir() or settings.overrides.get("keyframes"):
        return settings, ""
    overrides = FrozenMap({**settings.overrides, "keyframes": str(folder.resolve())})
    try:
        settings.style.check(overrides)
    except InputError:  # the style has no colorize stage: the folder is not for it
        return settings, ""
    files = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in folder.iterdir() if f.is_file())
    digest = hashlib.sha256(repr(files).encode()).hexdigest()[:16]
    return replace(settings, overrides=overrides), f"+keyframes:{digest}"


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


def run_batch(input_dir: str | os.PathLike, output_dir: str | os.PathLike, settings: RunSettings | None = None, *,
              patterns: str = DEFAULT_PATTERNS, recursive: bool = False, executor: Executor | None = None,
              on_file: Callable[[FileRow, int, int], None] | None = None) -> BatchReport:
    """Process every matching video under ``input_dir`` into the mirrored tree under ``output_dir``;
    see the module docstring. ``settings`` (``make_settings``; default: the noir style) go to every
    file; the batch owns its output tree, so they are given ``overwrite``. ``on_file(row, k, n)`` is
    called as each file finishes."""
    started = time.perf_counter()
    settings = replace(settings or make_settings(), overwrite=True)
    # 1. inputs and outputs
    src = Path(input_dir)
    if not src.is_dir():
        raise InputError(f"{src}: no such folder" if not src.exists() else f"{src}: not a folder")
    dst = Path(output_dir)
    if dst.resolve() == src.resolve():
        raise InputError(f"{dst}: the output folder must differ from the input folder")
    signature = settings.signature()
    shash = settings_hash(signature)
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
        manifest.input_dir, manifest.settings = str(src.resolve()), signature
        for key in keys:
            remove_part(dst / outputs[key])
        # 3. plan
        tasks: list[FileTask] = []
        files: dict[str, Entry] = {}
        for key, path in zip(keys, inputs):
            old = manifest.files.get(key)
            try:
                st = path.stat()
                file_settings, kf_print = keyframes_beside(path, settings)
                new = Entry(output=outputs[key], size=st.st_size, mtime_ns=st.st_mtime_ns,
                            fingerprint=fingerprint(path, st.st_size) + kf_print, settings_hash=shash)
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
            tasks.append(FileTask(key, str(path.resolve()), str((dst / outputs[key]).resolve()), file_settings))
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
            self._old = signal.signal(signal.SIGTERM, raise_interrupted)

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)
