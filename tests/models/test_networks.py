"""Generators and discriminators: upstream key compatibility, any input size, self-attention."""

from __future__ import annotations

import pytest
import torch

from reference_layouts import cyclegan_resnet, cyclegan_unet, zhang_eccv16, zhang_siggraph17
from vidcolor.models.networks import (NLayerDiscriminator, PaddedGenerator, PixelDiscriminator, ResnetGenerator,
                                      UnetGenerator, crop_to, get_norm_layer, pad_to_multiple)
from vidcolor.models.registry import MODELS, build_model, count_params


def layout(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.mark.parametrize("norm", ["batch", "instance"])
@pytest.mark.parametrize("n_blocks", [6, 9])
def test_resnet_keys_match_upstream(norm: str, n_blocks: int) -> None:
    model = ResnetGenerator(3, 3, ngf=4, norm_layer=get_norm_layer(norm), n_blocks=n_blocks)
    assert layout(model) == cyclegan_resnet(3, 3, 4, n_blocks, norm)


@pytest.mark.parametrize("norm", ["batch", "instance"])
@pytest.mark.parametrize("num_downs", [7, 8])  # unet_128, unet_256
def test_unet_keys_match_upstream(norm: str, num_downs: int) -> None:
    model = UnetGenerator(3, 3, num_downs, ngf=4, norm_layer=get_norm_layer(norm))
    assert layout(model) == cyclegan_unet(3, 3, num_downs, 4, norm)


def test_unet_256_innermost_key_name() -> None:
    # The innermost downconv of unet_256 as it appears in upstream checkpoints.
    keys = UnetGenerator(3, 3, 8, ngf=4).state_dict()
    assert "model.model.1.model.3.model.3.model.3.model.3.model.3.model.3.model.1.weight" in keys


def test_zhang_keys_match_release() -> None:
    assert layout(build_model("eccv16")) == zhang_eccv16()
    assert layout(build_model("siggraph17")) == zhang_siggraph17()


@pytest.mark.parametrize("size", [(241, 321), (240, 426), (64, 64), (17, 100)])
def test_padded_generators_keep_any_size(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    for net in (UnetGenerator(1, 2, 6, ngf=4), ResnetGenerator(3, 3, ngf=4, n_blocks=1)):
        x = torch.rand(2, net.model.model[0].in_channels if isinstance(net, UnetGenerator) else 3, *size)
        y = PaddedGenerator(net).eval()(x)
        assert y.shape[-2:] == size
        assert y.abs().max() <= 1.0  # tanh


def test_pad_to_multiple_and_crop() -> None:
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).view(2, 3, 5, 7)
    padded, size = pad_to_multiple(x, 4)
    assert padded.shape == (2, 3, 8, 8) and size == (5, 7)
    assert torch.equal(crop_to(padded, size), x)
    # a pad larger than the image cannot reflect: replicate instead of failing
    tiny = torch.rand(1, 1, 3, 3)
    assert pad_to_multiple(tiny, 16)[0].shape == (1, 1, 16, 16)
    with pytest.raises(ValueError, match=r"expected \(N, C, H, W\)"):
        pad_to_multiple(torch.rand(3, 5, 7), 4)


def test_self_attention_is_off_by_default_and_starts_as_identity() -> None:
    torch.manual_seed(0)
    plain = UnetGenerator(3, 3, 6, ngf=4)
    att = UnetGenerator(3, 3, 6, ngf=4, self_attention=True, attention_depth=4)
    assert not any("attention" in k for k in plain.state_dict())
    extra = set(att.state_dict()) - set(plain.state_dict())
    assert extra and all(".attention." in k for k in extra)
    # upstream keys load into the attention model; gamma = 0 makes it the same function
    missing, unexpected = att.load_state_dict(plain.state_dict(), strict=False)
    assert set(missing) == extra and not unexpected
    x = torch.rand(1, 3, 64, 128)
    torch.testing.assert_close(att.eval()(x), plain.eval()(x))
    with torch.no_grad():
        for name, p in att.named_parameters():
            if name.endswith("gamma"):
                p.fill_(1.0)
    assert not torch.allclose(att(x), plain(x))


def test_discriminators() -> None:
    d = NLayerDiscriminator(6, ndf=4, n_layers=3)
    assert d(torch.rand(2, 6, 64, 64)).shape == (2, 1, 6, 6)  # 70x70 PatchGAN
    assert "model.0.bias" in d.state_dict() and "model.2.bias" not in d.state_dict()  # batch norm: no conv bias
    p = PixelDiscriminator(6, ndf=4, norm_layer=get_norm_layer("instance"))
    assert p(torch.rand(2, 6, 20, 30)).shape == (2, 1, 20, 30)


def test_validation_errors() -> None:
    with pytest.raises(ValueError, match="norm must be"):
        get_norm_layer("group")
    with pytest.raises(ValueError, match="unknown architecture 'vgg'"):
        build_model("vgg")
    with pytest.raises(ValueError, match="does not take n_blocks"):
        build_model("unet", n_blocks=3)
    with pytest.raises(ValueError, match="num_downs must be >= 5"):
        UnetGenerator(1, 2, 3)
    assert set(MODELS) >= {"unet", "resnet", "eccv16", "siggraph17"}


def test_param_counts_match_published_sizes() -> None:
    # CycleGAN resnet_9blocks: 11.378M (upstream prints it); Zhang ECCV16 ~32.2M, SIGGRAPH17 ~34.2M.
    assert count_params(build_model("resnet")) == 11_378_179
    assert count_params(build_model("eccv16")) == 32_236_011
    assert count_params(build_model("siggraph17")) == 34_187_027
