"""Architectures by name: ``MODELS["unet"]``, ``build_model("resnet", ngf=8, n_blocks=2)``.

One keyword-only builder per architecture, torchvision style: every hyperparameter is a keyword
with a default, and the same keywords are what a weights folder's ``config.json`` stores under
``"kwargs"``, so ``build_model(config["arch"], **config["kwargs"])`` rebuilds a saved model.
Registration is explicit (a decorator and a dict you can grep), never folder scanning.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import torch.nn as nn

from vidcolor.models.effunet import EffUNetColorizer
from vidcolor.models.networks import ResnetGenerator, UnetGenerator, get_norm_layer
from vidcolor.models.paintnet import PaintNet
from vidcolor.models.restorenet import RestoreNet
from vidcolor.models.superres import SuperResNet
from vidcolor.models.zhang import ECCV16Colorizer, SIGGRAPH17Colorizer

Builder = Callable[..., nn.Module]
MODELS: dict[str, Builder] = {}

# pytorch-CycleGAN-and-pix2pix ``--netG`` names -> (our arch, kwargs).
CYCLEGAN_NETG: dict[str, tuple[str, dict[str, Any]]] = {
    "unet_256": ("unet", {"num_downs": 8}),
    "unet_128": ("unet", {"num_downs": 7}),
    "resnet_9blocks": ("resnet", {"n_blocks": 9}),
    "resnet_6blocks": ("resnet", {"n_blocks": 6}),
}


def register_model(name: str) -> Callable[[Builder], Builder]:
    def deco(fn: Builder) -> Builder:
        if name in MODELS:
            raise ValueError(f"model {name!r} registered twice")
        MODELS[name] = fn
        return fn

    return deco


def build_model(arch: str, **kwargs: Any) -> nn.Module:
    """Build architecture ``arch`` (a key of :data:`MODELS`) with its keyword hyperparameters.

    Unknown names and unknown keywords raise ``ValueError`` naming what is accepted.
    """
    if arch not in MODELS:
        raise ValueError(f"unknown architecture {arch!r} (known: {', '.join(sorted(MODELS))})")
    builder = MODELS[arch]
    accepted = [p.name for p in inspect.signature(builder).parameters.values() if p.kind is p.KEYWORD_ONLY]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(f"architecture {arch!r} does not take {', '.join(unknown)} (accepted: {', '.join(accepted)})")
    return builder(**kwargs)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@register_model("unet")
def unet(*, input_nc: int = 1, output_nc: int = 2, num_downs: int = 8, ngf: int = 64, norm: str = "batch",
         use_dropout: bool = False, self_attention: bool = False, attention_depth: int | None = None) -> UnetGenerator:
    """pix2pix U-Net. Defaults: our colorizer (L -> ab, ``unet_256`` depth, batch norm as pix2pix)."""
    return UnetGenerator(input_nc, output_nc, num_downs, ngf=ngf, norm_layer=get_norm_layer(norm),
                         use_dropout=use_dropout, self_attention=self_attention, attention_depth=attention_depth)


@register_model("resnet")
def resnet(*, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, norm: str = "instance", use_dropout: bool = False,
           n_blocks: int = 9, padding_type: str = "reflect") -> ResnetGenerator:
    """CycleGAN ResNet generator. Defaults: ``resnet_9blocks`` with instance norm (RGB -> RGB)."""
    return ResnetGenerator(input_nc, output_nc, ngf=ngf, norm_layer=get_norm_layer(norm), use_dropout=use_dropout,
                           n_blocks=n_blocks, padding_type=padding_type)


@register_model("eccv16")
def eccv16() -> ECCV16Colorizer:
    """Zhang et al. ECCV 2016 colorizer (fixed architecture, ~32M parameters)."""
    return ECCV16Colorizer()


@register_model("siggraph17")
def siggraph17(*, classes: int = 529) -> SIGGRAPH17Colorizer:
    """Zhang et al. SIGGRAPH 2017 colorizer, automatic mode (~34M parameters)."""
    return SIGGRAPH17Colorizer(classes=classes)


@register_model("effunet")
def effunet(*, encoder: str = "lite0", decoder_channels: list[int] | tuple[int, ...] = (96, 64, 48, 32),
            out_stride: int = 4, step: float = 10.0, temperature: float = 0.5, chroma_gain: float = 1.0,
            confidence_gain: float = 0.0, frozen_blocks: int = 0) -> EffUNetColorizer:
    """The default colorizer (:mod:`vidcolor.models.effunet`): ImageNet EfficientNet-Lite encoder, U-Net
    decoder, ab-bin logits decoded by annealed mean (``temperature``, ``chroma_gain``, ``confidence_gain``). Built without
    weights; ``init_weights()`` loads the encoder's ImageNet weights for training."""
    return EffUNetColorizer(encoder=encoder, decoder_channels=tuple(decoder_channels), out_stride=out_stride,
                            step=step, temperature=temperature, chroma_gain=chroma_gain,
                            confidence_gain=confidence_gain, frozen_blocks=frozen_blocks)


@register_model("superres")
def superres(*, scale: int = 2, channels: int = 48, layers: int = 5) -> SuperResNet:
    """×2 / ×4 super-resolution (:mod:`vidcolor.models.superres`): RGB in [0, 1] -> RGB ``scale`` times
    larger, a residual over bicubic computed at the input's resolution."""
    return SuperResNet(scale=scale, channels=channels, layers=layers)


@register_model("restorenet")
def restorenet(*, frames: int = 3, channels: int = 32, layers: int = 6) -> RestoreNet:
    """Learned film restoration (:mod:`vidcolor.models.restorenet`): ``frames`` consecutive RGB frames in
    [0, 1] stacked on channels -> the middle one repaired, a residual over it."""
    return RestoreNet(frames=frames, channels=channels, layers=layers)


@register_model("paintnet")
def paintnet(*, widths: list[int] | tuple[int, ...] = (16, 32, 64), blocks: int = 4, residual: bool = True) -> PaintNet:
    """A painting style (:mod:`vidcolor.models.paintnet`): Johnson et al.'s feed-forward network moved
    down in resolution for CPU video; RGB in [-1, 1] -> painted RGB in [-1, 1]."""
    return PaintNet(widths=tuple(widths), blocks=blocks, residual=residual)
