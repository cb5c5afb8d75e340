"""Every CPU path that hands frames to OpenCV, on 1920-pixel-wide frames, against a plain numpy or
torch reference, on OpenCV 4.x and 5.x alike. OpenCV reads the last axis of a 3-D array as
channels (at most 512 in 4.x, 128 in 5.x): a stack of frames (T, H, W) or a plane passed as 3-D
works on the small frames most tests use and fails, or is misread, on wide ones."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidcolor.color import (
    as_plane,
    cv2_convert,
    grey_lightness,
    grey_lightness_fast,
    lab_to_rgb_keep_lightness,
    lightness_8bit,
    rgb_to_lab,
    rgb_to_lightness,
    to_uint8_cv2,
)

W = 1920


def _rgb8(t: int, h: int, w: int = W, seed: int = 0) -> torch.Tensor:
    """(T, 3, H, W) float32 RGB on 8-bit levels: a horizontal ramp (so every column differs) plus noise."""
    g = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(0, 1, w).view(1, 1, 1, w)
    x = (0.7 * ramp + 0.3 * torch.rand(t, 3, h, w, generator=g)).clamp(0, 1)
    return (x * 255).round() / 255


def _smooth_luma(t: int, h: int, w: int = W, seed: int = 0) -> torch.Tensor:
    """(T, 1, H, W) uint8 grey with smooth structure (what a colorizer sees in a film)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(t, 1, h // 8 + 1, w // 8 + 1, generator=g)
    return (F.interpolate(base, size=(h, w), mode="bilinear", align_corners=False) * 255).round().to(torch.uint8)


# -- vidcolor.color ---------------------------------------------------------------------------------
def test_as_plane_is_a_2d_view_and_rejects_strided_arrays() -> None:
    a = np.zeros((3, 4, W), np.float32)
    p = as_plane(a)
    assert p.shape == (12, W) and np.shares_memory(p, a)
    assert as_plane(np.zeros(W, np.float32)).shape == (1, W)
    with pytest.raises(ValueError, match="C-contiguous"):
        as_plane(a[:, :, ::2])


@pytest.mark.parametrize("shape", [(3, 6, W // 2), (2, 540, 960), (6, W), (W,), ()])
def test_grey_lightness_fast_takes_stacks_of_wide_frames(shape: tuple[int, ...]) -> None:
    g = np.random.default_rng(1).random(shape, dtype=np.float32)
    if g.size > 1:
        g.reshape(-1)[:4] = (0.0, 0.003, 0.04, 1.0)  # the linear toe, the very dark branch, white
    got = grey_lightness_fast(g)
    assert got.shape == g.shape and got.dtype == np.float32
    ref = grey_lightness(torch.from_numpy(np.asarray(g, np.float64))).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)


def test_colour_conversions_on_full_hd_width_match_the_formulas() -> None:
    rgb = _rgb8(2, 8)
    ref_lab = rgb_to_lab(rgb.double())
    # OpenCV's table-interpolated curves: within half a Lab unit
    torch.testing.assert_close(cv2_convert(rgb, cv2.COLOR_RGB2Lab).double(), ref_lab, atol=0.5, rtol=0)
    torch.testing.assert_close(rgb_to_lightness(rgb).double(), ref_lab[:, :1], atol=0.2, rtol=0)
    torch.testing.assert_close(lightness_8bit(rgb).double(), ref_lab[:, :1], atol=1e-3, rtol=0)
    u8 = (rgb * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    torch.testing.assert_close(lightness_8bit(u8), lightness_8bit(rgb), atol=1e-4, rtol=0)
    L, ab = ref_lab[:, :1].float(), (ref_lab[:, 1:] * 1.5).float()  # partly out of gamut
    fast = lab_to_rgb_keep_lightness(L, ab)
    slow = lab_to_rgb_keep_lightness(L, ab, backend="torch")
    assert fast.shape == (2, 3, 8, W)
    torch.testing.assert_close(fast, slow, atol=2e-3, rtol=0)


@pytest.mark.parametrize("shape", [(8, W), (8, W, 3), (4, W, 1)])
def test_to_uint8_cv2_rounds_and_saturates_wide_arrays(shape: tuple[int, ...]) -> None:
    x = np.random.default_rng(2).random(shape, dtype=np.float32) * 1.4 - 0.2
    ref = np.clip(np.floor(x * 255 + 0.5), 0, 255).astype(np.uint8)
    out = np.empty(shape, np.uint8)
    got = to_uint8_cv2(x, out)
    diff = np.abs(out.astype(int) - ref)  # OpenCV rounds exact halves to even
    assert got.shape == shape and diff.max() <= 1 and (diff > 0).mean() < 1e-3


# -- Colorize stage ---------------------------------------------------------------------------------
def test_guided_upsampling_and_box_filter_on_wide_planes() -> None:
    from vidcolor.ops import box_mean, guided_upsample

    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 2, 6, W // 2, generator=g)
    torch.testing.assert_close(box_mean(x, 1), F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False),
                               atol=1e-6, rtol=0)
    src, lo, hi = x, torch.rand(2, 1, 6, W // 2, generator=g), torch.rand(2, 1, 12, W, generator=g)
    ref = guided_upsample(src.double(), lo.double(), hi.double()).float()  # float64: the torch path
    torch.testing.assert_close(guided_upsample(src, lo, hi), ref, atol=1e-4, rtol=0)


def _i420_ref(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) float RGB in [0, 1] -> yuv420p planes (H * 3 / 2, W), BT.709 limited range, chroma
    as the mean of each 2x2 block (what swscale's encoder-side downsampling approximates)."""
    kr, kb = 0.2126, 0.0722
    kg = 1 - kr - kb
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = kr * r + kg * g + kb * b
    cb, cr = (b - y) / (2 * (1 - kb)), (r - y) / (2 * (1 - kr))
    h, w = y.shape
    cb, cr = (p.reshape(h // 2, 2, w // 2, 2).mean((1, 3)) for p in (cb, cr))
    return np.concatenate([(16 + 219 * y).reshape(-1), (128 + 224 * cb).reshape(-1),
                           (128 + 224 * cr).reshape(-1)]).reshape(h * 3 // 2, w)


def test_colorize_from_luma_into_yuv420_planes_on_full_hd() -> None:
    """The planes path (half-size L*, guided upsampling, i420_from_luma) on 1920x1080 luma with the
    shipped model: the same picture as the stage's RGB output for the same luma, encoded by a numpy
    BT.709 reference."""
    from vidcolor.stages import Chunk
    from vidcolor.stages.colorize import Colorize

    luma = _smooth_luma(2, 1080)
    stage = Colorize(weights="colorize")
    planes = stage.process(Chunk(luma, 0, yuv=(1, False))).frames
    assert planes.shape == (2, 1, 1620, W) and planes.dtype == torch.uint8
    rgb = stage.process(Chunk(luma, 0)).frames
    assert rgb.shape == (2, 3, 1080, W)
    for i in range(2):
        ref = _i420_ref(rgb[i].permute(1, 2, 0).double().numpy())
        d = np.abs(planes[i, 0].numpy().astype(float) - ref)
        assert d[:1080].mean() < 0.5 and d[1080:].mean() < 0.5 and np.percentile(d, 99.9) < 2
        assert np.abs(ref[1080:] - 128).mean() > 1  # coloured, not grey


# -- Grade stage ------------------------------------------------------------------------------------
@pytest.mark.parametrize("params", [
    {"preset": "noir", "black": 0.04, "white": 0.97, "contrast": 5.0, "vignette": 0.25},
    {"preset": "sepia", "contrast": 3.0, "vignette": 0.15},
    {"preset": "none", "contrast": 2.0, "vignette": 0.3},
    {"preset": "noir", "contrast": 2.0, "grain": 0.05, "vignette": 0.2},
])
def test_grade_8bit_and_grey_paths_on_full_hd_width_give_the_float_path(params: dict) -> None:
    from vidcolor.pipelines.frames import to_tensor, to_uint8

    from vidcolor.stages import Chunk
    from vidcolor.stages.grade import Grade

    g = Grade(**params)
    u8 = (_rgb8(2, 6) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    ref = to_uint8(g.process(Chunk(to_tensor(u8, torch.device("cpu")), 0)).frames)
    if g.accepts_uint8:
        got = to_uint8(g.process(Chunk(torch.from_numpy(u8).permute(0, 3, 1, 2), 0)).frames)
        diff = np.abs(got.astype(int) - ref)
        assert diff.max() <= 1 and (diff > 0).mean() < 2e-3  # OpenCV rounds exact halves to even
    if g.accepts_grey:  # grey frames in: the float path's frames of the grey RGB frames
        grey = u8[..., :1]
        ref = to_uint8(g.process(Chunk(to_tensor(np.repeat(grey, 3, -1), torch.device("cpu")), 0)).frames)
        got = g.process(Chunk(torch.from_numpy(np.ascontiguousarray(grey)).permute(0, 3, 1, 2), 0)).frames
        assert got.shape == (2, 1, 6, W)
        diff = np.abs(got[:, 0].numpy().astype(int) - ref[..., 0])
        assert diff.max() <= 1 and (diff > 0).mean() < 2e-3


# -- Stabilize stage --------------------------------------------------------------------------------
@pytest.mark.parametrize("channels", [1, 2, 3])
def test_stabilizer_warp_and_blend_on_full_hd_width_give_the_torch_path(channels: int) -> None:
    from vidcolor.stages.stabilize import _blend

    g = torch.Generator().manual_seed(4)
    h, w, height = 4, W // 4, 16
    cur = torch.rand(channels, height, W, generator=g)
    prev = torch.rand(channels, height, W, generator=g)
    flow = torch.randn(2, h, w, generator=g) * 0.5
    conf = torch.rand(1, h, w, generator=g)
    ref_w, ref = _blend(cur.double(), prev.double(), flow.double(), conf.double(), 0.8)  # float64: torch path
    out = cur.clone()
    wk, got = _blend(out, prev, flow, conf, 0.8)
    assert got.shape == (channels, height, W) and torch.equal(got, out)  # blended in place
    torch.testing.assert_close(wk.double(), ref_w, atol=1e-5, rtol=0)
    # OpenCV samples at 1/32 pixel: values within 1/32 of a pixel's difference
    torch.testing.assert_close(got.double(), ref, atol=0.04, rtol=0)
    assert (got.double() - ref).abs().mean() < 2e-3


def test_stabilizer_opencv_helpers_on_full_hd_width() -> None:
    from vidcolor.color import lab_to_rgb
    from vidcolor.stages.stabilize import Stabilize, _erode, _lab, _rgb

    rgb = _rgb8(2, 8)
    lab = _lab(rgb)
    torch.testing.assert_close(lab.double(), rgb_to_lab(rgb.double()), atol=0.5, rtol=0)
    torch.testing.assert_close(_rgb(lab).double(), lab_to_rgb(lab.double()), atol=1e-3, rtol=0)
    conf = torch.rand(2, 1, 8, W, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(_erode(conf), -F.max_pool2d(F.pad(-conf, (1, 1, 1, 1), mode="replicate"), 3, stride=1))
    stab = Stabilize(flow="dis", flow_size=16)
    x = _rgb8(2, 32)
    small = stab._working(x)
    assert small.shape == (2, 1, 16, W // 2)
    luma = x[:, 0:1] * 0.2126 + x[:, 1:2] * 0.7152 + x[:, 2:3] * 0.0722
    torch.testing.assert_close(small, F.avg_pool2d(luma, 2), atol=1e-5, rtol=0)


def test_stabilizer_keeps_a_static_full_hd_width_clip() -> None:
    from vidcolor.stages import Chunk
    from vidcolor.stages.stabilize import Stabilize

    x = _rgb8(1, 64, seed=6).expand(3, 3, 64, W).contiguous()
    out = Stabilize(strength=0.8, flow="dis", mode="rgb").process(Chunk(x, 0)).frames
    assert out.shape == x.shape
    assert (out - x).abs().mean() < 2e-3  # nothing moved: the warped past is the frame itself


# -- flow -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("downscale", [1.0, 2.0])
def test_dis_flow_on_full_hd_width_recovers_a_translation(downscale: float) -> None:
    from vidcolor.flow.dis import DISFlow

    g = torch.Generator().manual_seed(7)
    tex = F.interpolate(torch.rand(1, 1, 24, W // 8 + 8, generator=g), scale_factor=8, mode="bicubic",
                        align_corners=False).clamp(0, 1)
    a = tex[..., :, 8:8 + W]
    b = tex[..., :, 5:5 + W]  # b shifted: a(x) = b(x + 3)
    flow = DISFlow("medium", downscale=downscale)(a.expand(1, 3, -1, -1), b.expand(1, 3, -1, -1))
    assert flow.shape == (1, 2, 192, W)
    inner = flow[0, :, 32:-32, 64:-64]
    assert abs(float(inner[0].median()) - 3.0) < 0.25 and abs(float(inner[1].median())) < 0.25


# -- vidcolor.io.grey -------------------------------------------------------------------------------
@pytest.mark.parametrize("full", [False, True])
def test_grey_io_on_full_hd_width(full: bool) -> None:
    from vidcolor.io.grey import frame_from_luma, luma_from_frame

    grey = np.random.default_rng(8).integers(0, 256, (16, W), dtype=np.uint8)
    frame = frame_from_luma(grey, "yuv420p", full_range=full)
    y = frame.to_ndarray()[:16]
    ref = grey if full else np.round(16 + grey.astype(float) * 219 / 255).astype(np.uint8)
    assert np.array_equal(y, ref)
    frame.color_range = 2 if full else 1
    back = luma_from_frame(frame)
    expand = np.clip(np.round((ref.astype(float) - 16) * 255 / 219), 0, 255)
    assert back.shape == (16, W) and np.array_equal(back, grey if full else expand.astype(np.uint8))


@pytest.mark.parametrize("coding", [(1, False), (5, True)])
def test_i420_from_luma_on_full_hd_width_matches_numpy(coding: tuple[int, bool]) -> None:
    from vidcolor.io.grey import LUMA_COEFFS, i420_from_luma

    rng = np.random.default_rng(9)
    h = 8
    luma = rng.integers(0, 256, (h, W), dtype=np.uint8)
    luma_half = rng.random((h // 2, W // 2), dtype=np.float32)
    rgb_half = rng.random((h // 2, W // 2, 3), dtype=np.float32)
    got = i420_from_luma(luma, luma_half, rgb_half, coding)
    kr, kb = LUMA_COEFFS[coding[0]]
    kg = 1 - kr - kb
    off, sy, sc = (0.0, 255.0, 255.0) if coding[1] else (16.0, 219.0, 224.0)
    r, g, b = (rgb_half[..., k].astype(np.float64) for k in range(3))
    yc = kr * r + kg * g + kb * b
    cb, cr = 128 + sc * (b - yc) / (2 * (1 - kb)), 128 + sc * (r - yc) / (2 * (1 - kr))
    d_luma = torch.from_numpy(sy * (yc - luma_half))[None, None]
    up = F.interpolate(d_luma, size=(h, W), mode="bilinear", align_corners=False)[0, 0].numpy()
    y = up + off + sy * luma.astype(np.float64) / 255
    ref = np.concatenate([y.reshape(-1), cb.reshape(-1), cr.reshape(-1)]).reshape(h * 3 // 2, W)
    ref = np.clip(np.round(ref), 0, 255)
    assert got.shape == (h * 3 // 2, W)
    assert np.abs(got.astype(int) - ref).max() <= 1


# -- pipelines/run.py -------------------------------------------------------------------------------
def test_frame_conversions_on_full_hd_width() -> None:
    from vidcolor.pipelines.frames import to_tensor, to_uint8

    u8 = np.random.default_rng(10).integers(0, 256, (2, 8, W, 3), dtype=np.uint8)
    got = to_tensor(u8, torch.device("cpu"))
    assert torch.equal(got, torch.from_numpy(u8).permute(0, 3, 1, 2).float() / 255)
    x = torch.rand(2, 3, 8, W, generator=torch.Generator().manual_seed(11)) * 1.4 - 0.2
    ref = x.mul(255).add(0.5).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy().astype(int)
    for layout in (x, x.contiguous(memory_format=torch.channels_last)):
        diff = np.abs(to_uint8(layout).astype(int) - ref)
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


# -- training media helpers -------------------------------------------------------------------------
def test_training_image_helpers_on_full_hd(tmp_path: Path) -> None:
    from skimage.color import rgb2lab

    from training.media import _chroma, read_image, resize_short

    img = (_rgb8(1, 1080)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    path = tmp_path / "wide.png"
    assert cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    assert np.array_equal(read_image(str(path)), img)
    small = resize_short(img, 270)  # area filter by an exact factor 4: the mean of each 4x4 block
    block = img.reshape(270, 4, 480, 4, 3).mean((1, 3))
    assert small.shape == (270, 480, 3) and np.abs(small.astype(float) - block).max() <= 0.5 + 1e-6
    thumb = img.reshape(36, 30, 64, 30, 3).mean((1, 3)).round() / 255  # the 64-wide thumbnail _chroma takes
    lab = rgb2lab(thumb)
    assert _chroma(img) == pytest.approx(float(np.hypot(lab[..., 1], lab[..., 2]).mean()), abs=0.5)
