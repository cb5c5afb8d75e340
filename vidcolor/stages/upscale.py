"""Upscale: ×2 or ×4 super-resolution of every frame, a stage that changes the frame size.

``method``:

* ``"net"`` (default): vidcolor's super-resolution network (:mod:`vidcolor.models.superres`, a
  residual over bicubic learned by ``vidcolor train`` on (downscaled -> original) pairs); weights
  ``upscale-x2`` / ``upscale-x4`` unless ``weights`` names others. Weights that are not installed
  are a one-line error that names the classical methods.
* ``"bicubic"``, ``"lanczos"``: OpenCV's ``INTER_CUBIC`` / ``INTER_LANCZOS4`` (on CPU; bicubic
  ``F.interpolate`` on a GPU, lanczos through the CPU), clamped to [0, 1].

The stage's :meth:`output_size` tells the run the frame size it gives, so the writer is opened at
the final size of the style's chain; the aspect ratio (each side times ``factor``), the pts,
audio and subtitles are unchanged. Stages after it get the larger frames; ``Chunk.source`` stays
the decoded input frames at the input size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.errors import InputError, WeightsError
from vidcolor.models.pretrained import load_pretrained
from vidcolor.models.runtime import map_batches, pick_device, prepare_model
from vidcolor.stages.base import Chunk, OptionError, Stage, StageContext, StageOptions, option, register_stage

METHODS = ("net", "bicubic", "lanczos")
FACTORS = (2, 4)


@dataclass(frozen=True)
class UpscaleOptions(StageOptions):
    """The keys of a ``type = "upscale"`` table (see :class:`Upscale`)."""

    factor: int = option(2, int, 2, 4)
    method: str = option("net", str, choices=METHODS)
    weights: str | None = option(None, str)  # method "net": default upscale-x{factor}
    batch_size: int = option(2, int, 1, 64)

    def validate(self) -> None:
        if self.factor not in FACTORS:
            raise OptionError(f"factor must be 2 or 4, got {self.factor}")
        if self.weights is not None and self.method != "net":
            raise OptionError(f"weights are for method 'net', not {self.method!r}")


def default_weights(factor: int) -> str:
    return f"upscale-x{factor}"


@register_stage("upscale")
class Upscale(Stage):
    """RGB frames ``(T, 3, H, W)`` -> ``(T, 3, factor * H, factor * W)``, float32 in [0, 1]."""

    Options: ClassVar[type[StageOptions]] = UpscaleOptions

    def __init__(self, factor: int = 2, method: str = "net", weights: str | None = None, batch_size: int = 2,
                 device: str | torch.device | None = "cpu"):
        self.options = UpscaleOptions(factor=factor, method=method, weights=weights, batch_size=batch_size)
        self.factor, self.method, self.batch_size = int(factor), method, int(batch_size)
        self.device = pick_device(device)
        self.weights: str | None = None
        self.config: dict[str, Any] = {}
        self.model = None
        if method == "net":
            self.weights = weights or default_weights(self.factor)
            try:
                model, config = load_pretrained(self.weights, device="cpu")
            except WeightsError as exc:
                raise InputError(f"upscale method 'net' has no weights ({exc}); use method = \"bicubic\" or "
                                 f"\"lanczos\" instead") from None
            if config["task"] != "superres" or getattr(model, "scale", None) != self.factor:
                raise WeightsError(f"weights {self.weights!r} are not a ×{self.factor} super-resolution model "
                                   f"(task {config['task']!r}, scale {getattr(model, 'scale', None)})")
            self.config = config
            self.model = prepare_model(model, self.device)

    @classmethod
    def from_options(cls, options: StageOptions, ctx: StageContext) -> Upscale:
        return cls(**options.as_kwargs(), device=ctx.device)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        return height * self.factor, width * self.factor

    @torch.inference_mode()
    def upscale(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` float RGB in [0, 1] -> ``(N, 3, factor * H, factor * W)`` in [0, 1]."""
        if self.model is not None:
            return self.model(x.to(self.device, torch.float32)).clamp_(0.0, 1.0)
        if self.method == "bicubic" and x.device.type != "cpu":
            return F.interpolate(x.float(), scale_factor=self.factor, mode="bicubic", align_corners=False).clamp_(0, 1)
        return classical(x, self.factor, self.method)

    @torch.inference_mode()
    def process(self, chunk: Chunk) -> Chunk:
        frames = chunk.frames
        if frames.dtype != torch.float32 or frames.shape[1] != 3:
            raise ValueError(f"upscale takes float32 RGB frames, got {frames.dtype} {tuple(frames.shape)}")
        out = map_batches(lambda x: self.upscale(x).to(frames.device), frames, self.batch_size)
        return chunk.with_frames(out)

    def describe(self) -> dict[str, Any]:
        meta = self.config.get("meta", {})
        return {"stage": self.name, "factor": self.factor, "method": self.method, "weights": self.weights,
                "weights_sha256": meta.get("weights_sha256")}


def classical(x: torch.Tensor, factor: int, method: str) -> torch.Tensor:
    """Bicubic or Lanczos (OpenCV, a = -0.75 cubic / 8x8 Lanczos) ``factor`` times larger, clamped
    to [0, 1]; ``(N, 3, H, W)`` float in and out on ``x``'s device."""
    import cv2

    flag = cv2.INTER_CUBIC if method == "bicubic" else cv2.INTER_LANCZOS4
    hwc = x.detach().float().cpu().permute(0, 2, 3, 1).numpy()
    n, h, w, _ = hwc.shape
    out = np.empty((n, h * factor, w * factor, 3), np.float32)
    for i in range(n):
        cv2.resize(np.ascontiguousarray(hwc[i]), (w * factor, h * factor), dst=out[i], interpolation=flag)
    np.clip(out, 0.0, 1.0, out=out)
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(x.device)
