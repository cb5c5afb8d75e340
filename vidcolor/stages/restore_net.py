"""Learned film restoration: a network trained by ``vidcolor train`` (task ``restoration``) on every frame.

The network (:class:`vidcolor.models.restorenet.RestoreNet`) restores frame ``t`` from the decoded
frames ``t - r .. t + r`` stacked on channels (``r`` = its ``frames // 2``, 1 for the usual 3
frames). The stage keeps the last ``r`` decoded frames of the previous chunk in its state and reads
the ``r`` frames after its chunk from ``Chunk.ahead`` (``lookahead = r``), so every frame sees the
same neighbours however the film is cut into chunks or segments, and it runs the network one frame
at a time, so the output does not depend on chunking either. Where a neighbour does not exist (the
first and last ``r`` frames of the film) the nearest existing frame stands in for it.

Options: ``weights`` (required): a weights name in the cache (what ``vidcolor train export --name``
writes) or a folder, relative to the style file's folder when it is one there. Like ``restore`` it
works on the decoded frames, so it comes first in a style. Scene cuts are not detected: at a cut,
the frame before or after comes from the other shot.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from vidcolor.errors import InputError, WeightsError
from vidcolor.models.pretrained import load_pretrained
from vidcolor.models.runtime import pick_device, prepare_model
from vidcolor.stages.base import Chunk, OptionError, Stage, StageContext, StageOptions, option, register_stage


@dataclass(frozen=True)
class RestoreNetOptions(StageOptions):
    """The keys of a ``type = "restore_net"`` table."""

    weights: str | None = option(None, str)

    def validate(self) -> None:
        if not self.weights:
            raise OptionError("weights is required: the name or folder of a network trained with "
                              "`vidcolor train` (task restoration) and exported")


@register_stage("restore_net")
class RestoreNetStage(Stage):
    """RGB frames ``(T, 3, H, W)`` float32 in [0, 1] -> the same, each restored from its neighbours."""

    Options: ClassVar[type[StageOptions]] = RestoreNetOptions

    def __init__(self, weights: str, device: str | torch.device | None = "cpu"):
        self.options = RestoreNetOptions(weights=weights)
        self.device = pick_device(device)
        self.weights = weights
        model, config = load_pretrained(weights, device="cpu")
        if config["task"] != "restoration" or not hasattr(model, "radius"):
            raise WeightsError(f"weights {weights!r} are not a restoration network (task {config['task']!r})")
        self.config = config
        self.radius = int(model.radius)
        self.model = prepare_model(model, self.device)
        self._past: torch.Tensor | None = None  # the last `radius` decoded frames before the next chunk
        self._next = 0

    @property
    def lookahead(self) -> int:  # type: ignore[override]
        return self.radius

    @classmethod
    def from_options(cls, options: StageOptions, ctx: StageContext) -> Stage:
        weights = options.weights
        if ctx.style_dir and (Path(ctx.style_dir) / weights).is_dir():
            weights = str(Path(ctx.style_dir) / weights)
        return cls(weights=weights, device=ctx.device)

    @torch.inference_mode()
    def restore(self, window: torch.Tensor) -> torch.Tensor:
        """``(2r + 1, 3, H, W)`` consecutive frames -> the middle one restored, ``(3, H, W)`` in [0, 1]."""
        x = window.to(self.device, torch.float32).flatten(0, 1)[None]
        return self.model(x.contiguous(memory_format=torch.channels_last)).clamp_(0.0, 1.0)[0]

    @torch.inference_mode()
    def process(self, chunk: Chunk) -> Chunk:
        frames = chunk.frames
        if chunk.source is not None and frames is not chunk.source:
            raise InputError("a restore_net stage works on the decoded frames: put it first in the style")
        if frames.dtype != torch.float32 or frames.shape[1] != 3:
            raise ValueError(f"restore_net takes float32 RGB frames, got {frames.dtype} {tuple(frames.shape)}")
        if chunk.index != self._next:
            self.reset()
        r, n = self.radius, len(frames)
        past = self._past.to(frames.device) if self._past is not None else frames[:0]
        ahead = chunk.ahead[:r].to(frames.device, frames.dtype) if chunk.ahead is not None else frames[:0]
        seq = torch.cat([past, frames, ahead])
        out = torch.empty_like(frames)
        for k in range(n):
            p = len(past) + k
            idx = [min(max(j, 0), len(seq) - 1) for j in range(p - r, p + r + 1)]  # the film's ends: nearest frame
            out[k] = self.restore(seq[idx]).to(frames.device)
        self._past = seq[max(0, len(past) + n - r):len(past) + n].clone() if r else None
        self._next = chunk.index + n
        return chunk.with_frames(out)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"next": torch.tensor(self._next)}
        if self._past is not None:
            state["past"] = self._past.cpu().clone()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._next = int(state.get("next", torch.tensor(0)))
        self._past = state["past"].clone() if "past" in state else None

    def reset(self) -> None:
        self._past = None
        self._next = 0

    def describe(self) -> dict[str, Any]:
        meta = self.config.get("meta", {})
        return {"stage": self.name, "weights": self.weights, "weights_sha256": meta.get("weights_sha256")}
