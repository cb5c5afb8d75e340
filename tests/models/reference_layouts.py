"""State-dict layouts of the upstream networks, written out independently of vidcolor's code.

Each function walks the layer lists of the original source (index by index, ReLUs and paddings
included, because they shift the key indices) and returns ``{key: shape}``:

* pytorch-CycleGAN-and-pix2pix ``models/networks.py``: ResnetGenerator, UnetGenerator (via
  UnetSkipConnectionBlock). ``norm="instance_old"`` is the pre-2018 InstanceNorm2d with
  ``track_running_stats=True`` (running stats, no affine), as in the published style generators.
* richzhang/colorization ``colorizers/eccv16.py`` and ``siggraph17.py``.

``make_state_dict(layout)`` fills a layout with small seeded values, like a trained checkpoint.
"""

from __future__ import annotations

import torch

Layout = dict[str, tuple[int, ...]]


def _norm(layout: Layout, prefix: str, c: int, norm: str) -> None:
    if norm == "batch":
        layout.update({f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
                       f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()})
    elif norm == "instance_old":
        layout.update({f"{prefix}.running_mean": (c,), f"{prefix}.running_var": (c,),
                       f"{prefix}.num_batches_tracked": ()})
    # "instance" (current upstream): no parameters, no buffers


def _conv(layout: Layout, prefix: str, shape: tuple[int, ...], bias: bool) -> None:
    layout[f"{prefix}.weight"] = shape
    if bias:
        layout[f"{prefix}.bias"] = (shape[0],) if len(shape) == 4 else shape
    # (ConvTranspose2d bias has out_channels = weight.shape[1]; callers pass bias shapes explicitly.)


def _convT(layout: Layout, prefix: str, cin: int, cout: int, k: int, bias: bool) -> None:
    layout[f"{prefix}.weight"] = (cin, cout, k, k)
    if bias:
        layout[f"{prefix}.bias"] = (cout,)


def cyclegan_resnet(input_nc: int, output_nc: int, ngf: int, n_blocks: int, norm: str) -> Layout:
    bias = norm != "batch"  # upstream: use_bias = norm is InstanceNorm2d
    L: Layout = {}
    # 0 ReflectionPad2d(3), 1 Conv7, 2 norm, 3 ReLU
    _conv(L, "model.1", (ngf, input_nc, 7, 7), bias)
    _norm(L, "model.2", ngf, norm)
    # 4 conv s2, 5 norm, 6 ReLU, 7 conv s2, 8 norm, 9 ReLU
    _conv(L, "model.4", (ngf * 2, ngf, 3, 3), bias)
    _norm(L, "model.5", ngf * 2, norm)
    _conv(L, "model.7", (ngf * 4, ngf * 2, 3, 3), bias)
    _norm(L, "model.8", ngf * 4, norm)
    for b in range(n_blocks):  # conv_block: 0 pad, 1 conv, 2 norm, 3 ReLU, 4 pad, 5 conv, 6 norm
        i = 10 + b
        _conv(L, f"model.{i}.conv_block.1", (ngf * 4,) * 2 + (3, 3), bias)
        _norm(L, f"model.{i}.conv_block.2", ngf * 4, norm)
        _conv(L, f"model.{i}.conv_block.5", (ngf * 4,) * 2 + (3, 3), bias)
        _norm(L, f"model.{i}.conv_block.6", ngf * 4, norm)
    i = 10 + n_blocks  # ConvT, norm, ReLU, ConvT, norm, ReLU, pad, conv7, tanh
    _convT(L, f"model.{i}", ngf * 4, ngf * 2, 3, bias)
    _norm(L, f"model.{i + 1}", ngf * 2, norm)
    _convT(L, f"model.{i + 3}", ngf * 2, ngf, 3, bias)
    _norm(L, f"model.{i + 4}", ngf, norm)
    _conv(L, f"model.{i + 7}", (output_nc, ngf, 7, 7), True)
    return L


def cyclegan_unet(input_nc: int, output_nc: int, num_downs: int, ngf: int, norm: str) -> Layout:
    bias = norm != "batch"
    # (outer_nc, inner_nc) per level from the outside in, as UnetGenerator builds them.
    levels = [(output_nc, ngf), (ngf, ngf * 2), (ngf * 2, ngf * 4), (ngf * 4, ngf * 8)]
    levels += [(ngf * 8, ngf * 8)] * (num_downs - 4)
    L: Layout = {}
    prefix = "model.model"
    for depth, (outer, inner) in enumerate(levels):
        if depth == 0:  # outermost: 0 downconv, 1 submodule, 2 ReLU, 3 ConvT (bias), 4 tanh
            _conv(L, f"{prefix}.0", (inner, input_nc, 4, 4), bias)
            _convT(L, f"{prefix}.3", inner * 2, outer, 4, True)
            prefix = f"{prefix}.1.model"
        elif depth == len(levels) - 1:  # innermost: 0 LReLU, 1 downconv, 2 ReLU, 3 ConvT, 4 norm
            _conv(L, f"{prefix}.1", (inner, outer, 4, 4), bias)
            _convT(L, f"{prefix}.3", inner, outer, 4, bias)
            _norm(L, f"{prefix}.4", outer, norm)
        else:  # 0 LReLU, 1 downconv, 2 norm, 3 submodule, 4 ReLU, 5 ConvT, 6 norm
            _conv(L, f"{prefix}.1", (inner, outer, 4, 4), bias)
            _norm(L, f"{prefix}.2", inner, norm)
            _convT(L, f"{prefix}.5", inner * 2, outer, 4, bias)
            _norm(L, f"{prefix}.6", outer, norm)
            prefix = f"{prefix}.3.model"
    return L


def _zhang_block(L: Layout, name: str, channels: list[int], init_relu: bool = False) -> None:
    # [ReLU], Conv, ReLU, Conv, ReLU, ..., BatchNorm
    i = 1 if init_relu else 0
    for cin, cout in zip(channels[:-1], channels[1:]):
        _conv(L, f"{name}.{i}", (cout, cin, 3, 3), True)
        i += 2
    _norm(L, f"{name}.{i}", channels[-1], "batch")


def zhang_eccv16() -> Layout:
    L: Layout = {}
    _zhang_block(L, "model1", [1, 64, 64])
    _zhang_block(L, "model2", [64, 128, 128])
    _zhang_block(L, "model3", [128, 256, 256, 256])
    for n in (4, 5, 6, 7):
        _zhang_block(L, f"model{n}", [256 if n == 4 else 512, 512, 512, 512])
    _convT(L, "model8.0", 512, 256, 4, True)
    _conv(L, "model8.2", (256, 256, 3, 3), True)
    _conv(L, "model8.4", (256, 256, 3, 3), True)
    _conv(L, "model8.6", (313, 256, 1, 1), True)
    L["model_out.weight"] = (2, 313, 1, 1)
    return L


def zhang_siggraph17(classes: int = 529) -> Layout:
    L: Layout = {}
    _zhang_block(L, "model1", [4, 64, 64])
    _zhang_block(L, "model2", [64, 128, 128])
    _zhang_block(L, "model3", [128, 256, 256, 256])
    for n in (4, 5, 6, 7):
        _zhang_block(L, f"model{n}", [256 if n == 4 else 512, 512, 512, 512])
    _convT(L, "model8up.0", 512, 256, 4, True)
    _conv(L, "model3short8.0", (256, 256, 3, 3), True)
    _zhang_block(L, "model8", [256, 256, 256], init_relu=True)
    _convT(L, "model9up.0", 256, 128, 4, True)
    _conv(L, "model2short9.0", (128, 128, 3, 3), True)
    _zhang_block(L, "model9", [128, 128], init_relu=True)
    _convT(L, "model10up.0", 128, 128, 4, True)
    _conv(L, "model1short10.0", (128, 64, 3, 3), True)
    _conv(L, "model10.1", (128, 128, 3, 3), True)
    _conv(L, "model_class.0", (classes, 256, 1, 1), True)
    _conv(L, "model_out.0", (2, 128, 1, 1), True)
    return L


def make_state_dict(layout: Layout, seed: int = 0, std: float = 0.05) -> dict[str, torch.Tensor]:
    """Seeded tensors for a layout: conv weights ~ N(0, std), biases 0, norm weight/var 1, mean 0."""
    g = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for key, shape in layout.items():
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            out[key] = torch.tensor(100, dtype=torch.long)
        elif leaf in ("running_var",) or (leaf == "weight" and len(shape) == 1):
            out[key] = torch.ones(shape)
        elif leaf in ("running_mean", "bias"):
            out[key] = torch.zeros(shape)
        else:
            out[key] = torch.randn(shape, generator=g) * std
    return out
