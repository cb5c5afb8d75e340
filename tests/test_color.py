"""Colour conversions against scikit-image, and the lightness-keeping Lab -> RGB."""

import numpy as np
import pytest
import torch
from skimage.color import lab2rgb, rgb2lab

from vidcolor.color import (
    lab_to_rgb,
    lab_to_rgb_keep_lightness,
    merge_lab,
    rgb_to_lab,
    rgb_to_lightness,
    saturation,
    split_lab,
)


def test_rgb_to_lab_matches_skimage():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 9, 11)
    ref = np.stack([rgb2lab(im.permute(1, 2, 0).numpy()) for im in x]).transpose(0, 3, 1, 2)
    torch.testing.assert_close(rgb_to_lab(x), torch.from_numpy(ref).float(), atol=2e-2, rtol=0)


def test_lab_roundtrip_and_skimage_inverse():
    torch.manual_seed(1)
    x = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(lab_to_rgb(rgb_to_lab(x)), x, atol=1e-4, rtol=0)
    lab = rgb_to_lab(x)[0].permute(1, 2, 0).numpy().astype(np.float64)
    torch.testing.assert_close(lab_to_rgb(rgb_to_lab(x))[0].permute(1, 2, 0), torch.from_numpy(lab2rgb(lab)).float(),
                               atol=1e-3, rtol=0)
    L, ab = split_lab(x)
    torch.testing.assert_close(merge_lab(L, ab), x, atol=1e-4, rtol=0)


def test_lightness_only_equals_lab_L():
    x = torch.rand(3, 3, 20, 30)
    torch.testing.assert_close(rgb_to_lightness(x, backend="torch"), rgb_to_lab(x)[:, :1], atol=1e-4, rtol=0)


def test_keep_lightness_is_exact_where_clipping_is_not():
    torch.manual_seed(0)
    L = torch.rand(2, 1, 32, 32) * 100
    ab = (torch.rand(2, 2, 32, 32) * 2 - 1) * 120  # many colours outside sRGB
    clipped = lab_to_rgb(torch.cat([L, ab], 1))
    assert (rgb_to_lab(clipped)[:, :1] - L).abs().max() > 5  # per-channel clipping moves L a lot
    kept = lab_to_rgb_keep_lightness(L, ab, backend="torch")
    assert kept.min() >= 0 and kept.max() <= 1
    assert (rgb_to_lab(kept)[:, :1] - L).abs().max() < 0.05
    # in-gamut colours are converted exactly like lab_to_rgb
    x = torch.rand(1, 3, 16, 16)
    lab = rgb_to_lab(x)
    torch.testing.assert_close(lab_to_rgb_keep_lightness(lab[:, :1], lab[:, 1:], backend="torch"), x, atol=1e-4, rtol=0)
    # out-of-gamut colours keep their hue direction: the chroma shrinks, it does not rotate much
    lab_kept = rgb_to_lab(kept)
    cos = (lab_kept[:, 1:] * ab).sum(1) / (lab_kept[:, 1:].norm(dim=1) * ab.norm(dim=1) + 1e-6)
    assert cos[lab_kept[:, 1:].norm(dim=1) > 5].mean() > 0.95


def test_saturation_and_errors():
    grey = torch.full((1, 3, 4, 4), 0.4)
    assert saturation(grey).max() == 0
    with pytest.raises(ValueError, match=r"shape \(\*, 3, H, W\)"):
        rgb_to_lab(torch.rand(2, 4, 4))
    with pytest.raises(TypeError):
        rgb_to_lab(np.zeros((3, 4, 4)))


def test_opencv_path_matches_the_formula():
    """backend="auto" (OpenCV on CPU) agrees with the torch formula: RGB within 3e-4 where in gamut,
    lightness within 0.25 L* (OpenCV interpolates its curves), and out-of-gamut colours still keep L*."""
    torch.manual_seed(2)
    L = torch.rand(2, 1, 40, 50) * 100
    ab = (torch.rand(2, 2, 40, 50) * 2 - 1) * 90  # a good share outside sRGB
    fast, ref = lab_to_rgb_keep_lightness(L, ab), lab_to_rgb_keep_lightness(L, ab, backend="torch")
    assert fast.shape == ref.shape and fast.dtype == torch.float32
    assert float((fast - ref).abs().max()) < 3e-4
    assert float((rgb_to_lab(fast)[:, :1] - L).abs().max()) < 0.05
    x = torch.rand(3, 3, 24, 30).contiguous(memory_format=torch.channels_last)
    light = rgb_to_lightness(x)
    assert light.shape == (3, 1, 24, 30)
    assert float((light - rgb_to_lightness(x, backend="torch")).abs().max()) < 0.25
    # tensors that need gradients (training) always take the formula
    xg = x.clone().requires_grad_(True)
    assert rgb_to_lightness(xg).requires_grad
    with pytest.raises(ValueError, match="backend"):
        rgb_to_lightness(x, backend="numpy")


def test_lightness_8bit_is_exact_on_decoded_frames() -> None:
    """The CPU colorizer's L*: exact (float64 formula) for 8-bit frames, within half an 8-bit step
    otherwise, whatever the memory layout."""
    from vidcolor.color import lightness_8bit

    g = torch.Generator().manual_seed(5)
    u8 = torch.randint(0, 256, (2, 3, 37, 53), generator=g, dtype=torch.uint8)
    x = u8.float() / 255
    x[0, :, :4] = torch.arange(4 * 53 * 3).reshape(3, 4, 53) / 255 / 64  # the dark (linear) branch too
    x = (x * 255).round() / 255
    ref = rgb_to_lightness(x.double(), backend="torch")
    for layout in (x, x.contiguous(memory_format=torch.channels_last)):
        got = lightness_8bit(layout)
        assert got.shape == (2, 1, 37, 53) and got.dtype == torch.float32
        assert float((got.double() - ref).abs().max()) < 1e-3
    y = torch.rand(1, 3, 40, 40, generator=g)  # not 8-bit: rounded first
    assert float((lightness_8bit(y).double() - rgb_to_lightness(y.double(), backend="torch")).abs().max()) < 0.25
