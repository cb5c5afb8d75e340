"""Stylize: an RGB -> RGB generator (e.g. a CycleGAN photo -> painting model) on every frame.

Weights whose config says ``"input": "grey"`` (a joint colorize + paint network) get the frame's
lightness on three channels, so colour input and black-and-white film give the same painting.

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

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from vidcolor.color import lab_to_rgb_keep_lightness, rgb_to_lab, rgb_to_lightness
from vidcolor.errors import WeightsError
from vidcolor.models.pretrained import load_pretrained
from vidcolor.models.runtime import (PRECISIONS, map_batches, pick_device, prepare_model, resize,
                                     resolve_precision, run_padded, working_size)
from vidcolor.stages.base import (Chunk, OptionError, Stage, StageContext, StageOptions, option,
                                  register_stage)


@dataclass(frozen=True)
class StylizeOptions(StageOptions):
    """The keys of a ``type = "stylize"`` table (see :class:`Stylize`); the CLI's ``--weights``,
    ``--render-size``, ``--precision`` and ``--compile`` set the keys of the same names."""

    weights: str | None = option(None, str)  # required, from the table or --weights
    render_size: int = option(256, int, 8, 4096)
    keep_luma: bool = option(False, bool)
    detail: float = option(0.0, float, 0, 1)
    batch_size: int = option(4, int, 1, 256)
    precision: str = option("auto", str, choices=PRECISIONS)
    compile: bool = option(False, bool)


@register_stage("stylize")
class Stylize(Stage):
    """RGB frames -> stylized RGB frames of the same size.

    ``weights``: a stylizer weights name or folder. ``render_size``: short side the model sees.
    ``keep_luma``: keep the source L, take only chroma from the model. ``detail``: 0..1 of source
    luminance detail added back (ignored with ``keep_luma``). ``batch_size``, ``precision``: as Colorize.
    Reads ``ctx.overrides`` keys ``weights``, ``render_size``, ``precision``, ``compile``; device from
    ``ctx.device``.
    """

    Options: ClassVar[type[StageOptions]] = StylizeOptions
    overrides: ClassVar[frozenset[str]] = frozenset({"weights", "render_size", "precision", "compile"})

    def __init__(self, weights: str, render_size: int = 256, keep_luma: bool = False, detail: float = 0.0,
                 batch_size: int = 4, precision: str = "auto", device: str | torch.device | None = "cpu",
                 compile: bool = False):
        self.options = StylizeOptions(weights=str(weights), render_size=render_size, keep_luma=keep_luma,
                                      detail=detail, batch_size=batch_size, precision=precision, compile=compile)
        self.compile = bool(compile)
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
        # a joint colorize + paint network (``vidcolor train style --from-grey``) sees grey frames only
        self.grey_input = config.get("input") == "grey"
        self.multiple = int(getattr(model, "size_multiple", 1))
        self.model = prepare_model(model, self.device, compile=self.compile, dtype=self.dtype)

    @classmethod
    def from_options(cls, options: StageOptions, ctx: StageContext) -> Stylize:
        if options.weights is None:  # type: ignore[attr-defined]
            raise OptionError("missing key 'weights' (a stylizer weights name or folder)")
        return cls(**options.as_kwargs(), device=ctx.device)

    @torch.inference_mode()
    def stylize(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` RGB in [0, 1] on the stage device -> ``(N, 3, H, W)`` RGB in [0, 1]."""
        full = tuple(x.shape[-2:])
        small = resize(x, working_size(full[0], full[1], self.render_size))
        if self.grey_input:
            small = (rgb_to_lightness(small) / 100.0).expand(-1, 3, -1, -1)
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
                "render_size": self.render_size, "grey_input": self.grey_input, "keep_luma": self.keep_luma,
                "detail": self.detail,
                "precision": self.precision, "compile": self.compile, "source_sha256": self.config.get("meta", {}).get("source_sha256"),
                "weights_sha256": self.config.get("meta", {}).get("weights_sha256")}
