"""Running a generator on video frames: working size, precision, device, batching.

Shared by the colorize and stylize stages. The model always sees frames at a *working size*
(short side ``render_size``, aspect kept) padded to the multiple the network needs, so compute
scales with ``render_size`` and not with the film's resolution.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from vidcolor.models.networks import crop_to, pad_to_multiple

PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def working_size(height: int, width: int, render_size: int) -> tuple[int, int]:
    """``(h, w)`` with the short side equal to ``render_size`` and the aspect ratio kept."""
    if render_size < 8:
        raise ValueError(f"render_size must be >= 8, got {render_size}")
    if height < 1 or width < 1:
        raise ValueError(f"frame size must be positive, got {height}x{width}")
    scale = render_size / min(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of ``(N, C, H, W)`` float to ``size``; antialiased when shrinking (no aliasing
    of fine texture into the model input)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 in hardware (AVX512-BF16 or AMX): there bf16 autocast roughly
    doubles convolution throughput (bin/bench: U-Net at 256x455, 8.3 -> 17.3 fps on 2 cores)."""
    try:
        flags = next((line for line in open("/proc/cpuinfo") if line.startswith("flags")), "")
    except OSError:
        return False
    return any(f in flags.split() for f in ("avx512_bf16", "amx_bf16"))


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32.

    ``auto``: fp16 autocast on CUDA (tensor cores); bf16 on CPUs with native bf16 (AVX512-BF16/AMX);
    fp32 on other CPUs, which emulate bf16 slower than fp32.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type == "cuda":
            return torch.float16
        return torch.bfloat16 if device.type == "cpu" and cpu_has_native_bf16() else None
    return torch.float16 if precision == "fp16" else torch.bfloat16


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def fold_batch_norm(model: nn.Module) -> int:
    """Fold every eval-mode ``BatchNorm2d`` that directly follows a ``Conv2d``/``ConvTranspose2d`` in an
    ``nn.Sequential`` (or that a module lists in its ``conv_bn_pairs`` attribute names) into that convolution's weights and bias (the BatchNorm becomes
    ``nn.Identity``): the same function up to float rounding, one pass over memory fewer. The
    pix2pix U-Net's down and up blocks are conv -> BN; instance norm (CycleGAN's ResNet) depends on
    the input and is left alone. Returns the number of layers folded."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = 0

    def foldable(conv: nn.Module, bn: nn.Module) -> bool:
        return (isinstance(conv, (nn.Conv2d, nn.ConvTranspose2d)) and type(bn) is nn.BatchNorm2d
                and not bn.training and bn.running_mean is not None and bn.running_var is not None)

    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for a, b in zip(names, names[1:]):
            conv, bn = seq._modules[a], seq._modules[b]
            if foldable(conv, bn):
                seq._modules[a] = fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d))
                seq._modules[b] = nn.Identity()
                folded += 1
    # modules that name their conv -> BN pairs (EfficientNet blocks call them as attributes)
    for m in list(model.modules()):
        for a, b in getattr(m, "conv_bn_pairs", ()):
            conv, bn = getattr(m, a, None), getattr(m, b, None)
            if conv is not None and bn is not None and foldable(conv, bn):
                setattr(m, a, fuse_conv_bn_eval(conv, bn, transpose=isinstance(conv, nn.ConvTranspose2d)))
                setattr(m, b, nn.Identity())
                folded += 1
    return folded


def prepare_model(model: nn.Module, device: torch.device, compile: bool = False,
                  dtype: torch.dtype | None = None) -> nn.Module:
    """Ready ``model`` for inference (it is changed in place; do not train it afterwards):

    - eval mode on ``device``, batch norm folded into the convolutions (:func:`fold_batch_norm`;
      the shipped colorizer, bf16, batch 8 at 128x256: 16-20 -> 14-15 ms on one core, 12.6 -> 8.6
      ms on two);
    - weights ``channels_last`` (cuDNN and oneDNN both convolve faster in that layout: 3.5 -> 2.2 ms
      CPU an image in bf16, 6.7 -> 5.6 ms in fp32);
    - with ``dtype`` (the autocast dtype :func:`run_padded` will use), convolution weights stored in
      it, so autocast does not cast them again on every call (14.1 -> 12.2 ms on one core, 8.2 ->
      7.3 on two); other layers keep fp32 and get autocast's usual treatment;
    - ``compile``: ``torch.compile`` (inductor; compiles on the first call, once per input shape).
    """
    model = model.to(device).eval()
    fold_batch_norm(model)
    model = model.to(memory_format=torch.channels_last)
    if dtype is not None:
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                m.to(dtype)
    if compile:
        model = torch.compile(model)
    return model


def run_padded(model: nn.Module, x: torch.Tensor, multiple: int, dtype: torch.dtype | None) -> torch.Tensor:
    """``model`` on ``(N, C, h, w)`` of any size: pad to ``multiple``, run under autocast, crop,
    return float32."""
    padded, size = pad_to_multiple(x, multiple)
    padded = padded.contiguous(memory_format=torch.channels_last)  # the layout prepare_model gives weights
    with autocast(padded.device, dtype):
        y = model(padded)
    return crop_to(y, size).float()


def batches(n: int, batch_size: int) -> Iterator[slice]:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for start in range(0, n, batch_size):
        yield slice(start, min(n, start + batch_size))


def map_batches(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``fn`` over ``x`` in slices of ``batch_size`` along dim 0, concatenated."""
    return torch.cat([fn(x[s]) for s in batches(x.shape[0], batch_size)], dim=0)


def pick_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"``: CUDA if available, else CPU; otherwise the given device."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
