"""A feed-forward painting network (Johnson et al. 2016's shape, made cheap enough for CPU video).

Johnson's transformation network (conv 9x9, two stride-2 convs, five residual blocks at 1/4
resolution, two up-convs, conv 9x9; instance norm as Ulyanov et al. 2016) costs about 35 GFLOP
for a 854x480 frame: seconds a frame on two CPU cores. This keeps its parts and moves them down in
resolution:

* the image enters through a space-to-depth step (``PixelUnshuffle(2)``: 3 -> 12 channels at half
  size) and leaves through depth-to-space (``PixelShuffle(2)``), so no convolution runs at the
  working resolution itself, yet every output pixel is predicted (no upsampling blur);
* the residual blocks run at 1/8 of the working size (ReCoNet, Gao et al. 2018, also works at 1/4
  with few channels); 3x3 reflection-padded convolutions, instance norm with affine parameters;
* up-sampling is nearest-neighbour + conv (Odena et al. 2016: no checkerboard from transposed convs).

With widths (16, 32, 64) and 4 residual blocks: 0.35 M parameters, about 17 ms for a 456x256
working frame in bf16 on one core of this CPU (28 ms at 568x320).

Input and output: ``(N, 3, H, W)`` RGB in [-1, 1] (the stylize stage's convention); H and W
multiples of :attr:`size_multiple` (the stage pads). ``features(x)`` also returns the residual
blocks' output, the feature map of ReCoNet's feature temporal loss.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, 1, padding_mode="reflect")


class _ConvBlock(nn.Sequential):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__(_conv(cin, cout, stride), nn.InstanceNorm2d(cout, affine=True), nn.ReLU(inplace=True))


class _Residual(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(_ConvBlock(c, c), _conv(c, c), nn.InstanceNorm2d(c, affine=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class _Up(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.block = _ConvBlock(cin, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class PaintNet(nn.Module):
    """RGB -> painted RGB, both in [-1, 1] (see the module docstring).

    ``widths``: channels at 1/2, 1/4 and 1/8 of the input size; ``blocks``: residual blocks at 1/8.
    ``residual``: the output is the input plus what the network adds, clamped to [-1, 1] (a joint
    colorize + paint network gets grey input and adds the colour); else ``tanh`` of the decoder.
    """

    size_multiple = 8

    def __init__(self, widths: tuple[int, int, int] | list[int] = (16, 32, 64), blocks: int = 4,
                 residual: bool = True):
        super().__init__()
        self.residual_output = bool(residual)
        c1, c2, c3 = (int(w) for w in widths)
        if min(c1, c2, c3) < 1 or blocks < 0:
            raise ValueError(f"widths must be 3 positive ints and blocks >= 0, got {widths}, {blocks}")
        self.widths, self.blocks = (c1, c2, c3), int(blocks)
        self.encode = nn.Sequential(nn.PixelUnshuffle(2), _ConvBlock(12, c1), _ConvBlock(c1, c2, 2),
                                    _ConvBlock(c2, c3, 2))
        self.residual = nn.Sequential(*[_Residual(c3) for _ in range(blocks)])
        self.decode = nn.Sequential(_Up(c3, c2), _Up(c2, c1), _conv(c1, 12), nn.PixelShuffle(2))

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(output in [-1, 1], the residual blocks' output at 1/8 size)."""
        f = self.residual(self.encode(x))
        if self.residual_output:
            return (x + self.decode(f)).clamp(-1.0, 1.0), f
        return torch.tanh(self.decode(f)), f

    def init_weights(self, gain: float = 0.02) -> None:
        """PyTorch's default (Kaiming-uniform) convolutions, not pix2pix's N(0, ``gain``): behind
        instance norm the small init only slows learning (a 128-px overfit test reached a third of
        the style loss in half the steps with the default). A residual network's last convolution
        starts at zero, so training starts from the frame itself (all content, no style), as Gatys
        et al.'s optimisation starts from the content image: style is added, content never rebuilt."""
        if self.residual_output:
            nn.init.zeros_(self.decode[-2].weight)
            nn.init.zeros_(self.decode[-2].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[0]
