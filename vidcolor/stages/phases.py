"""The Colorize stage as two pipeline steps (:meth:`vidcolor.stages.colorize.Colorize.phases`)."""

from __future__ import annotations

import collections
from typing import Any

import torch

from vidcolor.stages.base import Chunk, Stage


class ColorizePhase(Stage):
    """One step of a Colorize stage split for pipelining (:meth:`Colorize.phases`): ``predict``
    leaves its result in the parent's queue (chunks arrive in order, one thread per step), ``render``
    takes it. Chunks that are not luma go through the parent's ``process`` in the render step."""

    def __init__(self, parent: Any, step: str, pending: collections.deque) -> None:
        self.parent, self.step, self.pending = parent, step, pending
        self.name = f"colorize:{step}"

    @torch.inference_mode()
    def process(self, chunk: Chunk) -> Chunk:
        p, x = self.parent, chunk.frames
        luma = x.dtype == torch.uint8 and x.shape[1] == 1
        if self.step == "predict":
            if luma:
                self.pending.append((chunk.index, p.predict_grey(x, chunk.index, defer=True)))
            return chunk
        if not luma:
            return p.process(chunk)
        index, parts = self.pending.popleft()
        if index != chunk.index:
            raise RuntimeError(f"colorize phases out of step: predicted chunk {index}, rendering {chunk.index}")
        return chunk.with_frames(p.render_grey(x, chunk.yuv, *parts, split=False))
