"""Stylize: an RGB -> RGB generator (e.g. a CycleGAN photo -> painting model) on every frame.

The model runs at a working size (short side ``render_size``, aspect kept, padded to its
multiple) on RGB scaled to [-1, 1], as in pytorch-CycleGAN-and-pix2pix (``Normalize(0.5, 0.5)``);
its output is upsampled bilinearly to the frame size. Two options bring back what the working
size loses:

* ``keep_luma=True``: only the chroma of the stylized image is used, merged with the source's
  full-resolution L (as the colorize stage does): sharp, no luminance flicker, "recoloured" look.
* ``detail`` in [0, 1]: otherwise, add back this much of the source's high-frequency luminance
  (``L - upsample(downsample(L))``, the detail the model never saw) to the stylized L.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from vidcolor.color import lab_to_rgb_keep_lightness, rgb_to_lab, rgb_to_lightness
from vidcolor.errors import InputError, WeightsError
from vidcolor.models.pretrained import load_pretrained
from vidcolor.models.runtime import (PRECISIONS, map_batches, pick_device, prepare_model, resize,
                                     resolve_precision, run_padded, working_size)
from vidcolor.stages.base import Chunk, Param, Stage, StageContext, register_stage


@register_stage("stylize")
class Stylize(Stage):
    """RGB frames -> stylized RGB frames of the same size.

    ``weights``: a stylizer weights name or folder. ``render_size``: short side the model sees.
    ``keep_luma``: keep the source L, take only chroma from the model. ``detail``: 0..1 of source
    luminance detail added back (ignored with ``keep_luma``). ``batch_size``, ``precision``: as Colorize.
    Reads ``ctx.overrides`` keys ``weights``, ``render_size``, ``precision``, ``compile``; device from
    ``ctx.device``.
    """

    style_keys: ClassVar[dict[str, Param]] = {
        "weights": Param(str), "render_size": Param(int, 8, 4096), "keep_luma": Param(bool),
        "detail": Param(float, 0, 1), "batch_size": Param(int, 1, 256),
        "precision": Param(str, choices=PRECISIONS), "compile": Param(bool),
    }
    overrides: ClassVar[frozenset[str]] = frozenset({"weights", "render_size", "precision", "compile"})

    def __init__(self, weights: str, render_size: int = 256, keep_luma: bool = False, detail: float = 0.0,
                 batch_size: int = 4, precision: str = "auto", device: str | torch.device | None = "cpu",
                 compile: bool = False):
        if not isinstance(render_size, int) or render_size < 8:
            raise ValueError(f"render_size must be an int >= 8, got {render_size!r}")
        self.compile = bool(compile)
        if not 0.0 <= float(detail) <= 1.0:
            raise ValueError(f"detail must be in [0, 1], got {detail}")
        self.device = pick_device(device)
        self.dtype = resolve_precision(precision, self.device)
        self.weights, self.render_size = str(weights), render_size
        self.keep_luma, self.detail = bool(keep_luma), float(detail)
        self.batch_size, self.precision = int(batch_size), precision
        model, config = load_pretrained(self.weights, device="cpu")
        if config["task"] != "stylize":
            raise WeightsError(f"weights {self.weights!r} are a {config['task']} model, the stylize stage needs "
                               "stylize weights")
        self.config = config
        self.multiple = int(getattr(model, "size_multiple", 1))
        self.model = prepare_model(model, self.device, compile=self.compile, dtype=self.dtype)

    @classmethod
    def from_config(cls, params: dict[str, Any], ctx: StageContext) -> "Stylize":
        read = {k: v for k, v in ctx.overrides.items() if k in cls.overrides and v is not None}
        params = {**params, **read}
        params.setdefault("device", ctx.device)
        try:
            return super().from_config(params, ctx)  # type: ignore[return-value]
        except ValueError as exc:
            raise InputError(f"stage {cls.name!r}: {exc}") from None

    @torch.inference_mode()
    def stylize(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` RGB in [0, 1] on the stage device -> ``(N, 3, H, W)`` RGB in [0, 1]."""
        full = tuple(x.shape[-2:])
        small = resize(x, working_size(full[0], full[1], self.render_size))
        out = run_padded(self.model, small * 2 - 1, self.multiple, self.dtype)
        if out.shape[1] != 3:
            raise WeightsError(f"weights {self.weights!r} give {out.shape[1]} channels, a stylizer must give 3 (RGB)")
        styled = resize(((out + 1) / 2).clamp(0, 1), full)
        if not self.keep_luma and self.detail == 0.0:
            return styled
        lab = rgb_to_lab(styled)
        src_L = rgb_to_lightness(x)
        if self.keep_luma:
            L = src_L
        else:
            lost = src_L - resize(resize(src_L, tuple(small.shape[-2:])), full)
            L = (lab[:, :1] + self.detail * lost).clamp(0, 100)
        return lab_to_rgb_keep_lightness(L, lab[:, 1:])

    @torch.inference_mode()
    def process(self, chunk: Chunk) -> Chunk:
        frames = chunk.frames
        out = map_batches(lambda x: self.stylize(x.to(self.device, torch.float32)).to(frames.device), frames,
                          self.batch_size)
        return chunk.with_frames(out)

    def describe(self) -> dict[str, Any]:
        return {"stage": self.name, "weights": self.weights, "arch": self.config["arch"],
                "render_size": self.render_size, "keep_luma": self.keep_luma, "detail": self.detail,
                "precision": self.precision, "compile": self.compile, "source_sha256": self.config.get("meta", {}).get("source_sha256"),
                "weights_sha256": self.config.get("meta", {}).get("weights_sha256")}
