"""Zhang et al. colorizers, re-implemented and key-compatible with their published state dicts.

* ECCV16: "Colorful Image Colorization" (Zhang, Isola, Efros, ECCV 2016): a VGG-style stack
  that classifies each pixel into 313 quantised ab bins; the released PyTorch port
  (richzhang/colorization ``colorizers/eccv16.py``) turns the class distribution into ab with a
  fixed 1x1 conv (``model_out``, the bin centres) and upsamples x4.
* SIGGRAPH17: "Real-Time User-Guided Image Colorization with Learned Deep Priors" (Zhang, Zhu
  et al., SIGGRAPH 2017): the same trunk with U-Net shortcuts and a regression head (tanh); it
  also takes user hints (ab + mask), which we feed as zeros (automatic mode).

Released code and weights: BSD-2-Clause (richzhang/colorization). Module and parameter names
(``model1.0.weight`` ... ``model_out.weight``) follow that code so its ``.pth`` files load as-is.

Our convention (see :mod:`vidcolor.models.pretrained`): the normalisation lives in the weights
config, not in the network. Both networks take normalised L ``(N, 1, H, W)`` = ``(L - 50) / 100``
and return normalised ab ``(N, 2, H, W)`` = ``ab / 110`` (config ``l_norm = [50, 100]``,
``ab_scale = 110``, the constants of their ``BaseColor``). H and W must be multiples of 8.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

# Their BaseColor constants, recorded in our weights config.
ZHANG_L_NORM = (50.0, 100.0)
ZHANG_AB_SCALE = 110.0


def _block(channels: list[int], *, stride_last: int = 1, dilation: int = 1, init_relu: bool = False,
           norm: bool = True) -> nn.Sequential:
    """``[relu], conv, relu, conv, relu, ..., [batchnorm]`` as in their ``modelN`` lists.

    Keeping the exact list (ReLUs included) matters: the indices are part of the key names.
    """
    layers: list[nn.Module] = [nn.ReLU(True)] if init_relu else []
    for i, (cin, cout) in enumerate(zip(channels[:-1], channels[1:])):
        last = i == len(channels) - 2
        layers += [nn.Conv2d(cin, cout, kernel_size=3, stride=stride_last if last else 1, padding=dilation,
                             dilation=dilation, bias=True), nn.ReLU(True)]
    if norm:
        layers.append(nn.BatchNorm2d(channels[-1]))
    return nn.Sequential(*layers)


class ECCV16Colorizer(nn.Module):
    """ECCV16 network. ``(N, 1, H, W)`` normalised L -> ``(N, 2, H, W)`` normalised ab (about [-1, 1]).

    The 313-way softmax is computed at H/4 and mapped to ab by ``model_out`` (313 -> 2, no bias):
    their released port's "annealed-mean" shortcut with temperature 1, then bilinear x4.
    """

    size_multiple = 8

    def __init__(self) -> None:
        super().__init__()
        self.model1 = _block([1, 64, 64], stride_last=2)
        self.model2 = _block([64, 128, 128], stride_last=2)
        self.model3 = _block([128, 256, 256, 256], stride_last=2)
        self.model4 = _block([256, 512, 512, 512])
        self.model5 = _block([512, 512, 512, 512], dilation=2)
        self.model6 = _block([512, 512, 512, 512], dilation=2)
        self.model7 = _block([512, 512, 512, 512])
        self.model8 = nn.Sequential(
            nn.ConvTranspose2d(512, 256, kernel_size=4, stride=2, padding=1, bias=True), nn.ReLU(True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1, bias=True), nn.ReLU(True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1, bias=True), nn.ReLU(True),
            nn.Conv2d(256, 313, kernel_size=1, bias=True))
        self.model_out = nn.Conv2d(313, 2, kernel_size=1, bias=False)

    def forward(self, l_norm: torch.Tensor) -> torch.Tensor:
        x = l_norm
        for block in (self.model1, self.model2, self.model3, self.model4, self.model5, self.model6,
                      self.model7, self.model8):
            x = block(x)
        ab = self.model_out(torch.softmax(x, dim=1))
        return F.interpolate(ab, scale_factor=4, mode="bilinear", align_corners=False)


class SIGGRAPH17Colorizer(nn.Module):
    """SIGGRAPH17 network in automatic mode. ``(N, 1, H, W)`` normalised L, or ``(N, 4, H, W)``
    = [L, ab hints / 110, mask] -> ``(N, 2, H, W)`` normalised ab in [-1, 1] (tanh).

    ``model_class`` (the 529-way classification head used only for training) is kept so their
    state dict loads strictly; it is not evaluated.
    """

    size_multiple = 8

    def __init__(self, classes: int = 529) -> None:
        super().__init__()
        self.model1 = _block([4, 64, 64])
        self.model2 = _block([64, 128, 128])
        self.model3 = _block([128, 256, 256, 256])
        self.model4 = _block([256, 512, 512, 512])
        self.model5 = _block([512, 512, 512, 512], dilation=2)
        self.model6 = _block([512, 512, 512, 512], dilation=2)
        self.model7 = _block([512, 512, 512, 512])
        self.model8up = nn.Sequential(nn.ConvTranspose2d(512, 256, kernel_size=4, stride=2, padding=1, bias=True))
        self.model3short8 = nn.Sequential(nn.Conv2d(256, 256, kernel_size=3, padding=1, bias=True))
        self.model8 = _block([256, 256, 256], init_relu=True)
        self.model9up = nn.Sequential(nn.ConvTranspose2d(256, 128, kernel_size=4, stride=2, padding=1, bias=True))
        self.model2short9 = nn.Sequential(nn.Conv2d(128, 128, kernel_size=3, padding=1, bias=True))
        self.model9 = _block([128, 128], init_relu=True)
        self.model10up = nn.Sequential(nn.ConvTranspose2d(128, 128, kernel_size=4, stride=2, padding=1, bias=True))
        self.model1short10 = nn.Sequential(nn.Conv2d(64, 128, kernel_size=3, padding=1, bias=True))
        self.model10 = nn.Sequential(nn.ReLU(True), nn.Conv2d(128, 128, kernel_size=3, padding=1, bias=True),
                                     nn.LeakyReLU(negative_slope=0.2))
        self.model_class = nn.Sequential(nn.Conv2d(256, classes, kernel_size=1, bias=True))
        self.model_out = nn.Sequential(nn.Conv2d(128, 2, kernel_size=1, bias=True), nn.Tanh())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:  # automatic mode: no ab hints, empty mask
            x = torch.cat([x, torch.zeros_like(x).expand(-1, 3, -1, -1)], dim=1)
        elif x.shape[1] != 4:
            raise ValueError(f"expected (N, 1, H, W) L or (N, 4, H, W) L+hints+mask, got {tuple(x.shape)}")
        # Their port subsamples by striding ([:, :, ::2, ::2]) instead of strided convolutions.
        conv1 = self.model1(x)
        conv2 = self.model2(conv1[:, :, ::2, ::2])
        conv3 = self.model3(conv2[:, :, ::2, ::2])
        conv7 = self.model7(self.model6(self.model5(self.model4(conv3[:, :, ::2, ::2]))))
        conv8 = self.model8(self.model8up(conv7) + self.model3short8(conv3))
        conv9 = self.model9(self.model9up(conv8) + self.model2short9(conv2))
        conv10 = self.model10(self.model10up(conv9) + self.model1short10(conv1))
        return self.model_out(conv10)
