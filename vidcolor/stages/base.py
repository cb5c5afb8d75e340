"""The stage contract: a chunk of frames in, a chunk of frames out, with state that crosses chunks.

A pipeline is ``reader -> Stage 1 ... Stage n -> writer``. Stages see chunks of consecutive frames
(``Chunk.frames`` is ``(T, 3, H, W)`` float32 RGB in [0, 1], on the stage's device; or uint8 RGB on
CPU for a style whose stages all declare ``accepts_uint8``; or ``(T, 1, H, W)`` uint8 luma for a
style whose stages all declare ``accepts_grey``, see ``pipelines/run.py``) and must give
the same result however a video is cut into chunks: anything a stage needs from earlier frames
(previous output for the stabilizer, a grain RNG, ...) lives in its state and is exposed through
``state_dict()`` / ``load_state_dict()`` so resumable runs can restore it.

Stages are registered by name with ``@register_stage("grade")`` and built from a style's TOML
table with ``build_stage(spec, ctx)``; each stage class gets only its own table.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, ClassVar

import torch

from vidcolor.errors import InputError


@dataclass
class Chunk:
    """``frames``: (T, 3, H, W) float32 RGB in [0, 1] (uint8 RGB, or (T, 1, H, W) uint8 luma, for stages
    that accept it); ``index``: number of the first frame in the video;
    ``pts``: presentation timestamps (in the video stream's time base), one per frame;
    ``source``: the decoded input frames of this chunk, (T, 3, H, W), untouched by earlier stages
    (temporal stages compute flow and scene cuts on the input, not on a previous stage's output);
    ``yuv``: set by the run when the writer takes yuv420p planes as they are, to their coding
    (swscale matrix code, full range): a stage may then give ``frames`` as (T, 1, H * 3 / 2, W)
    uint8 planes in that coding (``vidcolor.io.grey.i420_from_luma``; the Colorize stage does,
    from luma input)."""

    frames: torch.Tensor
    index: int
    pts: list[int] = field(default_factory=list)
    source: torch.Tensor | None = None
    yuv: tuple[int, bool] | None = None

    def __post_init__(self) -> None:
        if self.frames.dim() != 4 or self.frames.shape[1] not in (1, 3):
            raise ValueError(f"Chunk.frames must have shape (T, 3, H, W) (or (T, 1, H, W) grey), "
                             f"got {tuple(self.frames.shape)}")
        if self.pts and len(self.pts) != self.frames.shape[0]:
            raise ValueError(f"Chunk has {self.frames.shape[0]} frames but {len(self.pts)} pts")

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def with_frames(self, frames: torch.Tensor) -> "Chunk":
        return replace(self, frames=frames)


@dataclass(frozen=True)
class StageContext:
    """What every stage may need from the run, besides its own parameters.

    ``overrides`` holds CLI settings that stages may honour (``lut``, ``temporal``, ``render_size``,
    ``flow``, ``weights``...); each stage documents the keys it reads.
    """

    device: torch.device = torch.device("cpu")
    overrides: dict[str, Any] = field(default_factory=dict)
    style_dir: str | None = None  # folder of the style file, for resolving relative paths


class Stage:
    """Base class. Subclasses implement ``process``; temporal ones also the state methods."""

    name: ClassVar[str] = "stage"

    def process(self, chunk: Chunk) -> Chunk:
        raise NotImplementedError

    def __call__(self, chunk: Chunk) -> Chunk:
        return self.process(chunk)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            raise ValueError(f"stage {self.name!r} keeps no state but got keys {sorted(state)}")

    def reset(self) -> None:
        """Forget temporal state (start of a new video or a scene cut)."""

    def describe(self) -> dict[str, Any]:
        """Settings for provenance tags and run reports."""
        return {"stage": self.name}

    @classmethod
    def from_config(cls, params: dict[str, Any], ctx: StageContext) -> "Stage":
        try:
            return cls(**params)  # type: ignore[call-arg]
        except TypeError as exc:
            raise InputError(f"stage {cls.name!r}: {exc}") from None


STAGES: dict[str, type[Stage]] = {}


def register_stage(name: str) -> Callable[[type[Stage]], type[Stage]]:
    def deco(cls: type[Stage]) -> type[Stage]:
        if name in STAGES:
            raise ValueError(f"stage {name!r} registered twice")
        cls.name = name
        STAGES[name] = cls
        return cls

    return deco


def build_stage(spec: dict[str, Any], ctx: StageContext) -> Stage:
    """Build a stage from a style's table: ``{"type": "grade", ...params}``."""
    import vidcolor.stages  # noqa: F401  (registers the built-in stages)

    params = dict(spec)
    kind = params.pop("type", None)
    if kind not in STAGES:
        raise InputError(f"unknown stage type {kind!r} (known: {', '.join(sorted(STAGES))})")
    return STAGES[kind].from_config(params, ctx)
