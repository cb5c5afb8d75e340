"""A small learned film-restoration network: the middle frame of a short clip, repaired from its neighbours.

``RestoreNet(frames=3)`` maps ``(N, 3 * frames, H, W)`` (``frames`` consecutive RGB frames in
[0, 1] stacked on channels, oldest first) to the middle frame ``(N, 3, H, W)``:

    out = x_mid + tail(body(head(x)))

the layout of :class:`vidcolor.models.superres.SuperResNet` at scale 1 (3x3 convolutions with ReLU
at full resolution, a global skip, the last convolution initialised to zero so a fresh network
returns the middle frame unchanged), with the neighbours as extra input channels: a dust speck or a
scratch is in one frame only, so the convolutions can tell it from detail by comparing the frames.
There is no motion compensation: what the network can match across frames is limited to its
receptive field (``2 * (layers + 2) + 1`` pixels).

Defaults (``frames=3, channels=32, layers=6``): 60 k parameters, about 60 k multiply-adds per pixel.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class RestoreNet(nn.Module):
    """``frames`` (odd, >= 1) stacked RGB frames -> the restored middle one; ``channels`` features in
    ``layers`` 3x3 convolutions (ReLU) between the 3x3 head and the 3x3 tail."""

    def __init__(self, frames: int = 3, channels: int = 32, layers: int = 6):
        super().__init__()
        if frames < 1 or frames % 2 == 0:
            raise ValueError(f"frames must be odd and >= 1 (the frame to restore in the middle), got {frames}")
        if channels < 1 or layers < 0:
            raise ValueError(f"channels must be >= 1 and layers >= 0, got {channels} and {layers}")
        self.frames = frames
        self.size_multiple = 1
        self.head = nn.Sequential(nn.Conv2d(3 * frames, channels, 3, padding=1), nn.ReLU(inplace=True))
        self.body = nn.Sequential(*[m for _ in range(layers)
                                    for m in (nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True))])
        self.tail = nn.Conv2d(channels, 3, 3, padding=1)

    @property
    def radius(self) -> int:
        """Frames either side of the one restored."""
        return self.frames // 2

    def init_weights(self, gain: float = 0.02) -> None:
        """He initialisation for the ReLU convolutions and a zero tail, so the untrained network
        returns the middle frame exactly (``gain`` is unused: the trainer's call signature)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.tail.weight)

    def middle(self, x: torch.Tensor) -> torch.Tensor:
        """The frame to restore: channels ``3 * radius .. 3 * radius + 2`` of ``x``."""
        r = self.radius
        return x[:, 3 * r:3 * r + 3]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != 3 * self.frames:
            raise ValueError(f"expected {self.frames} RGB frames stacked on channels ({3 * self.frames}), "
                             f"got {x.shape[1]} channels")
        return self.middle(x) + self.tail(self.body(self.head(x)))

    @torch.no_grad()
    def restore(self, x: torch.Tensor) -> torch.Tensor:
        """Inference: ``forward`` clamped to [0, 1]."""
        return self.forward(x).clamp_(0.0, 1.0)
