"""``Masked``: stages applied inside a region mask only (``--mask FILE``, ``mask = "FILE"`` in a stage table).

``out = m * styled + (1 - m) * input`` per pixel, where ``input`` is what the wrapped stages
received (for a whole-style mask: the decoded frames) and ``m`` the mask's weights for the frame
(``vidcolor.masks``). Where ``m`` is 0 the output is the input itself, so those pixels come out
bit-identical to the decoded input: 8-bit frames on CPU blend with ``cv2.blendLinear`` (its
division moves a value by at most 255e-5 before rounding), others with ``torch.lerp`` (its start
exactly at weight 0), and the run's float -> uint8 conversion (``to_uint8``) rounds ``v / 255 * 255``
back to ``v``.

Frame formats: the wrapper takes uint8 RGB when every wrapped stage does, never luma (the luma path
drops the input's chroma, which the pixels outside the mask keep), so no yuv420p planes either; a
wrapped stage that gives float RGB from uint8 input (Colorize) has it rounded to 8 bits as the
writer would, and the wrapper gives uint8 (uint8 in, uint8 out). Pipeline steps
(``phases()``), state, input inspection and preparation go through to the wrapped stages.
"""

from __future__ import annotations

import collections
from typing import Any

import numpy as np
import torch

from vidcolor.errors import InputError, ProcessingError
from vidcolor.masks import MaskSource
from vidcolor.stages.base import Chunk, Stage


class Masked(Stage):
    """``stages`` (one stage table's, or a whole style's) restricted to ``mask``."""

    name = "masked"
    accepts_grey = False

    def __init__(self, stages: list[Stage], mask: MaskSource) -> None:
        if not stages:
            raise ValueError("Masked needs at least one stage")
        for s in stages:
            if s.output_size(480, 640) != (480, 640):
                raise InputError(f"{mask.path}: a mask keeps frames at their size, and stage {s.name!r} resizes "
                                 "them; mask the stages before or after it instead")
        self.stages, self.mask = list(stages), mask
        self.name = "+".join(s.name for s in self.stages)
        self.pending: collections.deque = collections.deque()
        self._complement: tuple[np.ndarray, np.ndarray] | None = None  # the last map and 1 - map

    # -- capabilities and the run's hooks, from the wrapped stages ------------------------------------
    @property
    def accepts_uint8(self) -> bool:  # type: ignore[override]
        return all(s.accepts_uint8 for s in self.stages)

    @property
    def lookahead(self) -> int:  # type: ignore[override]
        """Input frames after its chunk the wrapped stages read (``Chunk.ahead``, passed on as it is)."""
        return max(getattr(s, "lookahead", 0) for s in self.stages)

    @property
    def inspects_input(self) -> bool:  # type: ignore[override]
        return any(s.inspects_input for s in self.stages)

    def inspect_input(self, frames: Any) -> None:
        for s in self.stages:
            if s.inspects_input:
                s.inspect_input(frames)

    @property
    def prepares_input(self) -> bool:  # type: ignore[override]
        return True  # release() closes a mask video's decoder

    def prepare_input(self, path: Any, meta: Any, allow_truncated: bool = False) -> None:
        for s in self.stages:
            if s.prepares_input:
                s.prepare_input(path, meta, allow_truncated)

    def release(self) -> None:
        try:
            for s in self.stages:
                if s.prepares_input:
                    s.release()
        finally:
            self.mask.close()

    @property
    def warnings(self) -> list[str]:
        return [w for s in self.stages for w in s.warnings]

    # -- frames -----------------------------------------------------------------------------------
    def blend(self, x: torch.Tensor, y: torch.Tensor, index: int) -> torch.Tensor:
        """``y`` (the stages' output) where the mask is 1, ``x`` (their input) where it is 0."""
        if x.shape[0] != y.shape[0] or x.shape[-2:] != y.shape[-2:] or x.shape[1] != y.shape[1]:
            raise ProcessingError(f"--mask: stage {self.name!r} gives frames of shape {tuple(y.shape)} from "
                                  f"{tuple(x.shape)}; a mask needs the same frames out as in")
        t, c, h, w = y.shape
        if x.dtype == torch.uint8 and y.device.type == "cpu" and c == 3 and y.dtype in (torch.uint8, torch.float32):
            if y.dtype == torch.float32:  # a uint8 run (Colorize gives float): to 8 bits as the writer would
                y = self.to_uint8(y)
            return self.blend_uint8(x, y, index)
        m = torch.from_numpy(np.stack([self.mask.weights(index + k, h, w) for k in range(t)])[:, None])
        m = m.to(y.device)
        if y.dtype == torch.uint8:  # at weight 0 exactly x, at 1 exactly y
            return torch.lerp(x.float(), y.float(), m).round_().clamp_(0, 255).to(torch.uint8)
        xf = x.to(y.device, torch.float32).div_(255) if x.dtype == torch.uint8 else x.to(y.device, y.dtype)
        return torch.lerp(xf, y, m.to(y.dtype))

    @staticmethod
    def to_uint8(y: torch.Tensor) -> torch.Tensor:
        """(T, 3, H, W) float RGB in [0, 1] on CPU -> uint8, channels-last: rounded and saturated by
        ``to_uint8_cv2``, the conversion the run's ``to_uint8`` applies before the writer."""
        from vidcolor.color import to_uint8_cv2

        ys = y.permute(0, 2, 3, 1).contiguous().numpy()
        out = np.empty(ys.shape, np.uint8)
        for k in range(len(ys)):
            to_uint8_cv2(ys[k], out[k])
        return torch.from_numpy(out).permute(0, 3, 1, 2)

    def blend_uint8(self, x: torch.Tensor, y: torch.Tensor, index: int) -> torch.Tensor:
        """The blend of 8-bit RGB on CPU with ``cv2.blendLinear`` (SIMD, OpenCV's threads), frame by
        frame in the frames' channels-last memory. It divides by the sum of the weights plus 1e-5,
        which moves a value by at most 255e-5 before rounding: weight 0 still gives ``x`` exactly."""
        import cv2

        t, _, h, w = y.shape
        xs, ys = (v.permute(0, 2, 3, 1).contiguous().numpy() for v in (x, y))
        out = np.empty_like(ys)
        for k in range(t):
            m = self.mask.weights(index + k, h, w)
            if self._complement is None or self._complement[0] is not m:  # a mask's maps are reused
                self._complement = (m, 1 - m)
            cv2.blendLinear(ys[k], xs[k], m, self._complement[1], dst=out[k])
        return torch.from_numpy(out).permute(0, 3, 1, 2)

    def process(self, chunk: Chunk) -> Chunk:
        x = chunk.frames
        for s in self.stages:
            chunk = s.process(chunk)
        return chunk.with_frames(self.blend(x, chunk.frames, chunk.index))

    def phases(self) -> list[Stage] | None:
        """The wrapped stages' steps, the first one also keeping its input for the last one, which
        blends (chunks come in order, one thread per step); None for a single plain stage."""
        steps = [step for s in self.stages for step in (s.phases() or [s])]
        if len(steps) == 1:
            return None
        self.pending = collections.deque()
        return [MaskStep(self, steps[0], "first"), *steps[1:-1], MaskStep(self, steps[-1], "last")]

    # -- state and provenance ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        if len(self.stages) == 1:
            return self.stages[0].state_dict()
        return {"stages": [s.state_dict() for s in self.stages]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(self.stages) == 1:
            self.stages[0].load_state_dict(state)
            return
        states = state.get("stages") if isinstance(state, dict) else None
        if not isinstance(states, list) or len(states) != len(self.stages):
            raise ValueError(f"masked stages {self.name!r}: the state has no list of {len(self.stages)} stages")
        for s, sd in zip(self.stages, states):
            s.load_state_dict(sd)

    def reset(self) -> None:
        for s in self.stages:
            s.reset()

    def describe(self) -> dict[str, Any]:
        mask = self.mask.describe()
        if len(self.stages) == 1:
            return {**self.stages[0].describe(), "mask": mask}
        return {"stage": self.name, "mask": mask, "stages": [s.describe() for s in self.stages]}


class MaskStep(Stage):
    """The first or last pipeline step of a ``Masked`` stage: the first keeps each chunk's input in
    the wrapper's queue, the last takes it and blends."""

    def __init__(self, parent: Masked, step: Stage, where: str) -> None:
        self.parent, self.step, self.where = parent, step, where
        self.name = f"{step.name}:masked-{where}"

    def process(self, chunk: Chunk) -> Chunk:
        p = self.parent
        if self.where == "first":
            p.pending.append((chunk.index, chunk.frames))
            return self.step.process(chunk)
        out = self.step.process(chunk)
        index, x = p.pending.popleft()
        if index != out.index:
            raise RuntimeError(f"masked steps out of step: kept chunk {index}, blending {out.index}")
        return out.with_frames(p.blend(x, out.frames, out.index))
