"""Run a style's stages concurrently: one thread per stage, joined by bounded queues.

The pipeline already decodes and encodes in threads of their own; with the stages called one after
the other in the main thread, the colorizer and the stabilizer of ``--style colorize`` take turns on
the CPU. Here stage *i* works on chunk *k* while stage *i+1* works on chunk *k-1*; torch and OpenCV
release the GIL in their kernels, so the stages really overlap. Chunks keep their order (each stage
has one thread and FIFO queues), so stateful stages (the stabilizer) see the video in order, and
the output is identical to calling the stages in turn (tested).

On a small CPU, torch's own intra-op threads then compete with the stage threads and spend their
time synchronising; :func:`cpu_threads_for` picks the intra-op count.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import torch

from vidcolor.stages.base import Chunk, Stage

_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def cpu_threads_for(n_stages: int, cores: int | None = None) -> int:
    """Torch intra-op threads per stage thread on CPU: the cores shared by the stage threads and the
    decoder and encoder threads (which take about one core between them at 854x480), at least 1."""
    cores = cores or os.cpu_count() or 1
    return max(1, (cores - 1) // max(1, n_stages))


def run_stages(stages: list[Stage], chunks: Iterable[Chunk], depth: int = 1) -> Iterator[Chunk]:
    """Yield ``stage_n(...stage_1(chunk))`` for every chunk, in order. With two or more stages each
    runs in its own thread; ``depth`` chunks wait between two stages (memory: ``depth`` chunks per
    queue). An exception in a stage or in ``chunks`` is raised here, in the caller's thread;
    closing the generator early stops the threads."""
    # a stage that splits into pipeline steps (Colorize: model, then rendering) runs them in threads
    stages = [step for s in stages for step in (s.phases() or [s])]
    if len(stages) < 2:
        for chunk in chunks:
            for stage in stages:
                chunk = stage.process(chunk)
            yield chunk
        return
    stop = threading.Event()
    queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=depth) for _ in range(len(stages) + 1)]

    def put(q: queue.Queue[Any], item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def get(q: queue.Queue[Any]) -> Any:
        while not stop.is_set():
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                continue
        return _DONE

    def feed() -> None:
        try:
            with torch.inference_mode():
                for chunk in chunks:
                    if not put(queues[0], chunk):
                        return
            put(queues[0], _DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(queues[0], _Failure(exc))

    def work(i: int, stage: Stage) -> None:
        with torch.inference_mode():
            while True:
                item = get(queues[i])
                if item is _DONE or isinstance(item, _Failure):
                    put(queues[i + 1], item)
                    return
                try:
                    item = stage.process(item)
                except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                    put(queues[i + 1], _Failure(exc))
                    return
                if not put(queues[i + 1], item):
                    return

    threads = [threading.Thread(target=feed, name="stages:feed", daemon=True)]
    threads += [threading.Thread(target=work, args=(i, s), name=f"stage:{s.name}", daemon=True)
                for i, s in enumerate(stages)]
    for t in threads:
        t.start()
    try:
        while True:
            item = get(queues[-1])
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
