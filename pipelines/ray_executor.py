"""Ray executor: batch files, and segments of long films, as Ray tasks on a cluster.

``RayExecutor`` has the batch executor interface (``run(tasks, on_result)``), so results and
failures flow into the same manifest and summary as with local processes. Each file is one task
with a resource request (``cpus_per_job``, ``gpus_per_job``; torch in the task uses that many
threads). With ``split_seconds``, a film longer than twice that is cut into segments of about
``split_seconds`` that run as parallel tasks (each warms up the stages' temporal state on a few
frames before its start: ``split.WARMUP_FRAMES``), and one more task, which Ray starts when all
of them are done, joins them into the output.

Where Ray runs: ``address=None`` starts a local Ray instance for the run (all cores of this
machine) and stops it at the end; ``"auto"`` joins the cluster started on this machine with
``ray start``; ``"HOST:PORT"`` a remote one. Workers on other machines need vidcolor installed and
the input and output folders at the same paths (shared storage).

Ray is an optional extra (``pip install 'vidcolor[ray]'``); without it the executor raises an
``InputError`` that says so.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from vidcolor.errors import InputError, VidcolorError
from vidcolor.io.containers import remove_part

from .executor import FileResult, FileTask, cpu_count, execute_task
from .split import WARMUP_FRAMES, SplitPlan, finish_split, plan_split_run, run_split_job
from .workdir import work_dir_for

MISSING = "--executor ray needs Ray, an optional extra: pip install 'vidcolor[ray]'"


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise InputError(MISSING) from None
    return ray


def connect(address: str | None = None) -> bool:
    """Attach this process to Ray (see the module docstring); returns True when it started a local
    instance that the caller should stop with ``ray.shutdown()``."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    try:
        if address in (None, "", "local"):
            # A local instance talks over loopback only: nothing listens on the machine's network address.
            ray.init(address="local", num_cpus=cpu_count(), include_dashboard=False, log_to_driver=False,
                     configure_logging=False, _node_ip_address="127.0.0.1")
            return True
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise InputError(f"--address {address}: cannot connect to a Ray cluster ({str(exc).splitlines()[0]})") from None
    return False


def _failure(exc: BaseException) -> str:
    """One line from a Ray error (``RayTaskError`` wraps the task's traceback)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, VidcolorError):
        return str(cause)
    if cause is not None:
        return f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}".rstrip(": ")
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return f"{type(exc).__name__}: {lines[-1] if lines else ''}".rstrip(": ")


def join_split_task(task: FileTask, plan: SplitPlan, *results: tuple) -> FileResult:
    """The last task of a split film: join the segments its jobs wrote (Ray passes their results)."""
    try:
        report = finish_split(plan, results)
    except VidcolorError as exc:
        shutil.rmtree(plan.work, ignore_errors=True)
        return FileResult(task.key, "failed", str(exc))
    return FileResult(task.key, "done", frames=report.frames, seconds=report.seconds, warnings=report.warnings)


class RayExecutor:
    """Batch executor on Ray (see the module docstring)."""

    name = "ray"

    def __init__(self, address: str | None = None, cpus_per_job: float = 1.0, gpus_per_job: float = 0.0,
                 split_seconds: float | None = None, warmup: int = WARMUP_FRAMES) -> None:
        import_ray()  # fail before anything is planned when the extra is missing
        if cpus_per_job <= 0 or gpus_per_job < 0:
            raise InputError("--cpus-per-job must be > 0 and --gpus-per-job >= 0")
        self.address = address
        self.cpus = float(cpus_per_job)
        self.gpus = float(gpus_per_job)
        self.split_seconds = split_seconds
        self.warmup = warmup

    def _plan_split(self, task: FileTask) -> SplitPlan | None:
        """A plan when the film is long enough to split, else None (probe failures: the file's own
        task reports them)."""
        if not self.split_seconds:
            return None
        from vidcolor.io.probe import probe

        try:
            meta = probe(task.input)
        except VidcolorError:
            return None
        if meta.duration is None or meta.duration < 2 * self.split_seconds:
            return None
        return plan_split_run(task.input, task.output, task.settings, segment_seconds=self.split_seconds,
                              warmup=self.warmup, threads=task.threads)

    def run(self, tasks: list[FileTask], on_result: Callable[[FileResult], None]) -> None:
        ray = import_ray()
        started = connect(self.address)
        resources = {"num_cpus": self.cpus, "num_gpus": self.gpus}
        file_fn = ray.remote(execute_task).options(**resources)
        segment_fn = ray.remote(run_split_job).options(**resources)
        join_fn = ray.remote(join_split_task).options(num_cpus=1)
        refs: dict[Any, FileTask] = {}
        split: set[str] = set()  # keys of split films: their work folders hold nothing to resume
        try:
            for task in tasks:
                task = replace(task, threads=max(1, int(self.cpus)))
                try:
                    plan = self._plan_split(task)
                except VidcolorError as exc:
                    on_result(FileResult(task.key, "failed", str(exc)))
                    continue
                if plan is None:
                    refs[file_fn.remote(task)] = task
                else:  # Ray starts the join when every segment's result is there
                    Path(task.output).parent.mkdir(parents=True, exist_ok=True)
                    parts = [segment_fn.remote(job) for job in plan.jobs]
                    refs[join_fn.remote(task, plan, *parts)] = task
                    split.add(task.key)
            pending = list(refs)
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    try:
                        result = ray.get(ref)
                    except Exception as exc:  # the task raised or its worker died: fail this file only
                        result = FileResult(refs[ref].key, "failed", _failure(exc))
                        if result.key in split:
                            shutil.rmtree(work_dir_for(refs[ref].output), ignore_errors=True)
                    del refs[ref]
                    on_result(result)
        except KeyboardInterrupt:
            for ref in refs:
                ray.cancel(ref, force=True)
            for task in refs.values():
                remove_part(task.output)
                if task.key in split:
                    shutil.rmtree(work_dir_for(task.output), ignore_errors=True)
            raise
        finally:
            if started:
                ray.shutdown()
