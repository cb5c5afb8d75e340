"""Stages in their own threads (pipelines/overlap.py): same output, same order, errors surface."""

import threading

import pytest
import torch

from vidcolor.pipelines.overlap import cpu_threads_for, run_stages
from vidcolor.stages.base import Chunk, Stage
from vidcolor.stages.grade import Grade
from vidcolor.stages.stabilize import Stabilize


class Running(Stage):
    """Stateful: adds the running sum of everything it has seen (order-sensitive)."""

    name = "running"

    def __init__(self) -> None:
        self.total = 0.0

    def process(self, chunk: Chunk) -> Chunk:
        out = chunk.frames + self.total
        self.total += float(chunk.frames.sum())
        return chunk.with_frames(out)


class Boom(Stage):
    name = "boom"

    def __init__(self, at: int) -> None:
        self.at = at

    def process(self, chunk: Chunk) -> Chunk:
        if chunk.index == self.at:
            raise RuntimeError(f"boom at {chunk.index}")
        return chunk


def _chunks(n: int, size: int = 3, h: int = 24, w: int = 32):
    g = torch.Generator().manual_seed(0)
    base = torch.rand(1, 3, h, w, generator=g)
    for k in range(n):
        x = (base + 0.02 * k * torch.rand(size, 3, h, w, generator=g)).clamp(0, 1)
        yield Chunk(frames=x, index=k * size, source=x)


def _live() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("stage")}


def test_threaded_stages_give_the_sequential_result_in_order():
    seq = [Running(), Running()]
    want = []
    for c in _chunks(7):
        for s in seq:
            c = s.process(c)
        want.append(c)
    got = list(run_stages([Running(), Running()], _chunks(7)))
    assert [c.index for c in got] == [c.index for c in want]
    for a, b in zip(got, want):
        assert torch.equal(a.frames, b.frames)
    assert not _live()


def test_real_stages_are_bit_identical_threaded():
    def make():
        return [Grade(preset="sepia", contrast=2.0), Stabilize(strength=0.6, flow="dis")]
    seq, want = make(), []
    with torch.inference_mode():
        for c in _chunks(5, h=48, w=64):
            for s in seq:
                c = s.process(c)
            want.append(c.frames)
        got = [c.frames for c in run_stages(make(), _chunks(5, h=48, w=64))]
    assert len(got) == 5 and all(torch.equal(a, b) for a, b in zip(got, want))


def test_a_failing_stage_raises_in_the_caller_and_stops_the_threads():
    with pytest.raises(RuntimeError, match="boom at 6"):
        for _ in run_stages([Running(), Boom(at=6), Running()], _chunks(10)):
            pass
    assert not _live()


def test_a_failing_source_raises_and_closing_early_stops_the_threads():
    def bad():
        yield from _chunks(2)
        raise ValueError("corrupt frame 6")

    with pytest.raises(ValueError, match="corrupt frame 6"):
        list(run_stages([Running(), Running()], bad()))
    gen = run_stages([Running(), Running()], _chunks(50))
    assert next(gen).index == 0
    gen.close()
    assert not _live()


def test_intra_op_threads_leave_a_core_for_decode_and_encode():
    assert cpu_threads_for(2, cores=2) == 1
    assert cpu_threads_for(1, cores=2) == 1
    assert cpu_threads_for(2, cores=16) == 7
    assert cpu_threads_for(1, cores=1) == 1
