"""GAN generators and discriminators, state-dict compatible with pytorch-CycleGAN-and-pix2pix.

Layer order, channel counts and ``nn.Sequential`` nesting follow ``models/networks.py`` of
junyanz/pytorch-CycleGAN-and-pix2pix (Isola et al. 2017, Zhu et al. 2017), so a user's
``latest_net_G.pth`` for ``unet_256``, ``unet_128``, ``resnet_9blocks`` or ``resnet_6blocks``
loads with ``load_state_dict`` unchanged (keys like ``model.model.0.weight`` / ``model.1.weight``).
Differences, none of which changes a key:

* ``get_norm_layer("instance")`` has no running statistics, as in the current upstream code;
  checkpoints from before PyTorch 0.4 carry ``running_mean``/``running_var`` for instance norms,
  which :func:`vidcolor.models.convert.patch_instance_norm_keys` drops (upstream does the same
  in ``BaseModel.__patch_instance_norm_state_dict``).
* ``UnetGenerator(self_attention=True)`` adds a SAGAN block (Zhang et al. 2019) whose keys live
  under ``...attention.*``; it is off by default so the key set stays upstream's.
* Every network exposes ``size_multiple``: the input height/width must be a multiple of it.
  :func:`pad_to_multiple` + :func:`crop_to` (or :class:`PaddedGenerator`) run any size and aspect
  ratio, which upstream does not (its issues #206, #452, #760, #813).

Generators map ``(N, C_in, H, W)`` float tensors to ``(N, C_out, H, W)`` in [-1, 1] (tanh).
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

NormLayer = Callable[[int], nn.Module]


def get_norm_layer(name: str = "instance") -> NormLayer:
    """``"batch"`` | ``"instance"`` | ``"none"`` -> a factory ``norm_layer(num_channels)``.

    Instance norm is affine-free without running stats (upstream, and Ulyanov et al. 2016);
    batch norm is affine with running stats. With ``"batch"`` the convolutions before a norm have
    no bias (the norm's shift replaces it), exactly as upstream decides ``use_bias``.
    """
    if name == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if name == "instance":
        return functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    if name == "none":
        return lambda num_channels: nn.Identity()
    raise ValueError(f"norm must be 'batch', 'instance' or 'none', got {name!r}")


def _uses_bias(norm_layer: NormLayer) -> bool:
    # Upstream: conv bias only when the norm is InstanceNorm (batch norm has its own shift).
    func = norm_layer.func if isinstance(norm_layer, functools.partial) else norm_layer
    return func is nn.InstanceNorm2d


def norm_name(norm_layer: NormLayer) -> str:
    """Inverse of :func:`get_norm_layer`, for configs."""
    func = norm_layer.func if isinstance(norm_layer, functools.partial) else norm_layer
    if func is nn.BatchNorm2d:
        return "batch"
    if func is nn.InstanceNorm2d:
        return "instance"
    return "none"


# --------------------------------------------------------------------------- any input size


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad ``(N, C, H, W)`` on the bottom/right so H and W are multiples of ``multiple``.

    Reflection padding (no hard black border for the convolutions to react to); where the pad is
    as large as the image itself reflection is impossible and replication is used. Returns the
    padded tensor and the original ``(H, W)`` for :func:`crop_to`.
    """
    if x.dim() != 4:
        raise ValueError(f"expected (N, C, H, W), got shape {tuple(x.shape)}")
    if multiple < 1:
        raise ValueError(f"multiple must be >= 1, got {multiple}")
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Undo :func:`pad_to_multiple`: keep the top-left ``size = (H, W)``."""
    return x[..., : size[0], : size[1]]


class PaddedGenerator(nn.Module):
    """Runs ``net`` on any ``(N, C, H, W)``: pad to ``net.size_multiple``, run, crop back.

    A wrapper for inference only; save ``wrapper.net`` so the keys stay the generator's own.
    """

    def __init__(self, net: nn.Module, multiple: int | None = None):
        super().__init__()
        self.net = net
        self.multiple = int(multiple if multiple is not None else getattr(net, "size_multiple", 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded, size = pad_to_multiple(x, self.multiple)
        return crop_to(self.net(padded), size)


# --------------------------------------------------------------------------- self-attention


class SelfAttention(nn.Module):
    """SAGAN self-attention (Zhang et al. 2019, §3): ``x + gamma * softmax(q^T k) v``.

    ``gamma`` starts at 0, so a freshly added block is the identity and a generator initialised
    from an upstream checkpoint behaves exactly as before fine-tuning starts.
    Input and output ``(N, C, H, W)``; memory grows with ``(H*W)^2``, so use it at low resolution.
    """

    def __init__(self, channels: int):
        super().__init__()
        inner = max(channels // 8, 1)
        self.query = nn.Conv2d(channels, inner, 1)
        self.key = nn.Conv2d(channels, inner, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q = self.query(x).flatten(2).transpose(1, 2)  # (N, HW, C')
        k = self.key(x).flatten(2)  # (N, C', HW)
        attn = torch.softmax(torch.bmm(q, k), dim=-1)  # (N, HW, HW)
        v = self.value(x).flatten(2)  # (N, C, HW)
        out = torch.bmm(v, attn.transpose(1, 2)).view(n, c, h, w)
        return x + self.gamma * out


# --------------------------------------------------------------------------- U-Net (pix2pix)


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: ``x -> [x, up(submodule(down(x)))]`` (upstream's block, same indices).

    ``self.model`` is ``[downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm(, dropout)]``
    (outermost: ``[downconv, submodule, uprelu, upconv, tanh]``; innermost: no submodule, no
    downnorm). An optional :class:`SelfAttention` sits in ``self.attention`` (its own keys) and is
    applied to the downsampled features, before the submodule.
    """

    def __init__(self, outer_nc: int, inner_nc: int, input_nc: int | None = None,
                 submodule: nn.Module | None = None, outermost: bool = False, innermost: bool = False,
                 norm_layer: NormLayer = nn.BatchNorm2d, use_dropout: bool = False,
                 self_attention: bool = False):
        super().__init__()
        self.outermost = outermost
        use_bias = _uses_bias(norm_layer)
        input_nc = outer_nc if input_nc is None else input_nc
        downconv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
        downrelu = nn.LeakyReLU(0.2, True)
        uprelu = nn.ReLU(True)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            down: list[nn.Module] = [downconv]
            up: list[nn.Module] = [uprelu, upconv, nn.Tanh()]
            layers = down + [submodule] + up
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            down = [downrelu, downconv]
            up = [uprelu, upconv, norm_layer(outer_nc)]
            layers = down + up
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=use_bias)
            down = [downrelu, downconv, norm_layer(inner_nc)]
            up = [uprelu, upconv, norm_layer(outer_nc)]
            layers = down + [submodule] + up + ([nn.Dropout(0.5)] if use_dropout else [])
        self._n_down = len(down)
        self.model = nn.Sequential(*layers)  # type: ignore[arg-type]
        self.attention = SelfAttention(inner_nc) if self_attention else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.attention is None:
            y = self.model(x)
        else:
            h = self.attention(self.model[: self._n_down](x))
            y = self.model[self._n_down:](h)
        return y if self.outermost else torch.cat([x, y], 1)


class UnetGenerator(nn.Module):
    """pix2pix U-Net (Isola et al. 2017, §3.2.1) with ``num_downs`` stride-2 levels.

    ``unet_256`` is ``num_downs=8``, ``unet_128`` is ``num_downs=7``: a 256x256 input reaches 1x1
    at the bottleneck. Input ``(N, input_nc, H, W)`` with H, W multiples of ``2**num_downs``
    (see :class:`PaddedGenerator`); output ``(N, output_nc, H, W)`` in [-1, 1].
    ``self_attention`` adds a SAGAN block after the downsampling of level ``attention_depth``
    (1 = first downsampling, default ``num_downs`` = the bottleneck).
    """

    def __init__(self, input_nc: int, output_nc: int, num_downs: int, ngf: int = 64,
                 norm_layer: NormLayer = nn.BatchNorm2d, use_dropout: bool = False,
                 self_attention: bool = False, attention_depth: int | None = None):
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"num_downs must be >= 5 (the U-Net has 5 fixed levels), got {num_downs}")
        depth = num_downs if attention_depth is None else attention_depth
        if self_attention and not 1 <= depth <= num_downs:
            raise ValueError(f"attention_depth must be in [1, {num_downs}], got {attention_depth}")
        att = (lambda level: self_attention and level == depth)  # noqa: E731
        # Built inside out, as upstream: innermost (level num_downs) first.
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, norm_layer=norm_layer, innermost=True,
                                        self_attention=att(num_downs))
        for i in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm_layer=norm_layer,
                                            use_dropout=use_dropout, self_attention=att(num_downs - 1 - i))
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm_layer=norm_layer, self_attention=att(4))
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm_layer=norm_layer, self_attention=att(3))
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm_layer=norm_layer, self_attention=att(2))
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True,
                                             norm_layer=norm_layer, self_attention=att(1))
        self.size_multiple = 2**num_downs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


# --------------------------------------------------------------------------- ResNet (CycleGAN)


class ResnetBlock(nn.Module):
    """``x + conv_block(x)``; conv_block = pad, conv3x3, norm, relu, (dropout), pad, conv3x3, norm."""

    def __init__(self, dim: int, padding_type: str, norm_layer: NormLayer, use_dropout: bool, use_bias: bool):
        super().__init__()
        layers: list[nn.Module] = []
        for second in (False, True):
            p = 0
            if padding_type == "reflect":
                layers.append(nn.ReflectionPad2d(1))
            elif padding_type == "replicate":
                layers.append(nn.ReplicationPad2d(1))
            elif padding_type == "zero":
                p = 1
            else:
                raise ValueError(f"padding_type must be 'reflect', 'replicate' or 'zero', got {padding_type!r}")
            layers += [nn.Conv2d(dim, dim, kernel_size=3, padding=p, bias=use_bias), norm_layer(dim)]
            if not second:
                layers.append(nn.ReLU(True))
                if use_dropout:
                    layers.append(nn.Dropout(0.5))
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """CycleGAN generator (Zhu et al. 2017, appendix 7.2, after Johnson et al. 2016).

    7x7 conv, two stride-2 downsamplings, ``n_blocks`` residual blocks (6: ``resnet_6blocks``,
    9: ``resnet_9blocks``), two transposed-conv upsamplings, 7x7 conv, tanh.
    Input ``(N, input_nc, H, W)`` with H, W multiples of 4; output ``(N, output_nc, H, W)`` in [-1, 1].
    """

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 64, norm_layer: NormLayer = nn.BatchNorm2d,
                 use_dropout: bool = False, n_blocks: int = 6, padding_type: str = "reflect"):
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        use_bias = _uses_bias(norm_layer)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=use_bias),
                                   norm_layer(ngf), nn.ReLU(True)]
        n_down = 2
        for i in range(n_down):
            mult = 2**i
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=use_bias),
                       norm_layer(ngf * mult * 2), nn.ReLU(True)]
        mult = 2**n_down
        layers += [ResnetBlock(ngf * mult, padding_type, norm_layer, use_dropout, use_bias) for _ in range(n_blocks)]
        for i in range(n_down):
            mult = 2 ** (n_down - i)
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, kernel_size=3, stride=2, padding=1,
                                          output_padding=1, bias=use_bias),
                       norm_layer(ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.size_multiple = 2**n_down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


# --------------------------------------------------------------------------- discriminators


class NLayerDiscriminator(nn.Module):
    """PatchGAN (Isola et al. 2017, §3.2.2): ``(N, input_nc, H, W)`` -> ``(N, 1, H', W')`` logits.

    ``n_layers=3`` is the 70x70 PatchGAN (``--netD basic``). Raw logits: the loss decides between
    LSGAN and BCE-with-logits, as upstream's ``GANLoss``.
    """

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, norm_layer: NormLayer = nn.BatchNorm2d):
        super().__init__()
        use_bias = _uses_bias(norm_layer)
        kw, padw = 4, 1
        seq: list[nn.Module] = [nn.Conv2d(input_nc, ndf, kernel_size=kw, stride=2, padding=padw), nn.LeakyReLU(0.2, True)]
        mult = mult_prev = 1
        for n in range(1, n_layers):
            mult_prev, mult = mult, min(2**n, 8)
            seq += [nn.Conv2d(ndf * mult_prev, ndf * mult, kernel_size=kw, stride=2, padding=padw, bias=use_bias),
                    norm_layer(ndf * mult), nn.LeakyReLU(0.2, True)]
        mult_prev, mult = mult, min(2**n_layers, 8)
        seq += [nn.Conv2d(ndf * mult_prev, ndf * mult, kernel_size=kw, stride=1, padding=padw, bias=use_bias),
                norm_layer(ndf * mult), nn.LeakyReLU(0.2, True),
                nn.Conv2d(ndf * mult, 1, kernel_size=kw, stride=1, padding=padw)]
        self.model = nn.Sequential(*seq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1x1 PatchGAN (``--netD pixel``): ``(N, input_nc, H, W)`` -> ``(N, 1, H, W)`` logits."""

    def __init__(self, input_nc: int, ndf: int = 64, norm_layer: NormLayer = nn.BatchNorm2d):
        super().__init__()
        use_bias = _uses_bias(norm_layer)
        self.net = nn.Sequential(
            nn.Conv2d(input_nc, ndf, kernel_size=1, stride=1, padding=0), nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, kernel_size=1, stride=1, padding=0, bias=use_bias), norm_layer(ndf * 2),
            nn.LeakyReLU(0.2, True), nn.Conv2d(ndf * 2, 1, kernel_size=1, stride=1, padding=0, bias=use_bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
