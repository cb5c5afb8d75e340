"""A small super-resolution network: a residual over bicubic upsampling, computed at low resolution.

``SuperResNet(scale=2)`` maps ``(N, 3, h, w)`` RGB in [0, 1] to ``(N, 3, scale*h, scale*w)``:

    out = bicubic(x, scale) + PixelShuffle(tail(body(head(x))))

as ESPCN (Shi et al., CVPR 2016: every convolution at the low resolution, sub-pixel convolution at
the end) with the global bicubic skip of VDSR (Kim et al., CVPR 2016): the convolutions only learn
the detail bicubic misses, and with the tail initialised to zero a fresh network *is* bicubic.

It works on RGB rather than on luma with bicubic chroma: the pipeline's frames are RGB, so no
colour conversion runs per frame, and only the first and the last convolution (a few percent of the
multiply-adds) see three channels instead of one; chroma edges sharpen too.

Defaults (``channels=48, layers=5``): 111 k parameters, about 110 k multiply-adds per input pixel.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

SCALES = (2, 4)


class SuperResNet(nn.Module):
    """``scale`` 2 or 4; ``channels`` features in ``layers`` 3x3 convolutions (ReLU) between the
    3x3 head and the tail that makes ``3 * scale**2`` channels for the pixel shuffle (two ×2
    shuffles for ×4)."""

    def __init__(self, scale: int = 2, channels: int = 48, layers: int = 5):
        super().__init__()
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale}")
        if channels < 1 or layers < 0:
            raise ValueError(f"channels must be >= 1 and layers >= 0, got {channels} and {layers}")
        self.scale = scale
        self.size_multiple = 1
        self.head = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(inplace=True))
        self.body = nn.Sequential(*[m for _ in range(layers)
                                    for m in (nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True))])
        stages = [nn.Conv2d(channels, 3 * 4, 3, padding=1), nn.PixelShuffle(2)] if scale == 2 else [
            nn.Conv2d(channels, channels * 4, 3, padding=1), nn.PixelShuffle(2), nn.ReLU(inplace=True),
            nn.Conv2d(channels, 3 * 4, 3, padding=1), nn.PixelShuffle(2)]
        self.tail = nn.Sequential(*stages)

    def init_weights(self, gain: float = 0.02) -> None:
        """He initialisation for the ReLU convolutions and a zero last convolution, so the untrained
        network returns bicubic exactly (``gain`` is unused: the trainer's call signature)."""
        convs = [m for m in self.modules() if isinstance(m, nn.Conv2d)]
        for m in convs:
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
        nn.init.zeros_(convs[-1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return base + self.tail(self.body(self.head(x)))

    @torch.no_grad()
    def upscale(self, x: torch.Tensor) -> torch.Tensor:
        """Inference: ``forward`` clamped to [0, 1]."""
        return self.forward(x).clamp_(0.0, 1.0)
