"""Metric reference checks: Lai et al. warping error, TCVC CDC, colorfulness, PSNR/SSIM/CIEDE2000
against scikit-image, and streaming == one call."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.flow.conftest import load_bedroom, load_kodak
from vidcolor import metrics
from vidcolor.flow import DISFlow


@pytest.fixture
def kodak() -> np.ndarray:
    return load_kodak()


@pytest.fixture
def bedroom() -> torch.Tensor:
    return load_bedroom()


class ExactFlow:
    """A FlowEstimator that knows the true motion of a window sliding by ``step`` pixels per frame.
    ``WarpingErrorMeter`` asks for the forward flow (t-1 -> t) and then the backward one, so calls
    alternate between ``-step`` and ``+step``."""

    name = "exact"

    def __init__(self, step: tuple[int, int]) -> None:
        self.step = step
        self.calls = 0

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        sign = -1.0 if self.calls % 2 == 0 else 1.0
        self.calls += 1
        flow = torch.zeros(a.shape[0], 2, *a.shape[-2:])
        flow[:, 0], flow[:, 1] = sign * self.step[0], sign * self.step[1]
        return flow


def sliding_window_clip(image: np.ndarray, frames: int, step: tuple[int, int], size=(96, 128)) -> torch.Tensor:
    """A real camera pan: frame t is the window at offset t*step of a still photo (whole pixels, so
    warping with the true flow is exact)."""
    out = []
    for t in range(frames):
        x0, y0 = 8 + t * step[0], 8 + t * step[1]
        out.append(image[y0:y0 + size[0], x0:x0 + size[1]])
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


def test_warping_error_of_a_perfectly_warped_sequence_is_zero(kodak):
    from vidcolor.flow import warp

    clip = sliding_window_clip(kodak, 6, (3, 1))
    est = ExactFlow((3, 1))
    # outputs that are exact warps of each other (built from the last frame backwards, so the
    # replicated border is part of the sequence too): warp(O_t, F) == O_{t-1} everywhere
    outs = [clip[-1:]]
    flow = torch.zeros(1, 2, *clip.shape[-2:])
    flow[:, 0], flow[:, 1] = -3.0, -1.0
    for _ in range(5):
        outs.insert(0, warp(outs[0], flow))
    err, per_pair = metrics.warping_error(torch.cat(outs), clip, est)
    assert len(per_pair) == 5 and err < 1e-10
    # a real pan measured with DIS: near zero, and far below a flickering version of the same frames
    err_dis, _ = metrics.warping_error(clip, clip, DISFlow())
    sign = torch.tensor([1.0, -1, 1, -1, 1, -1]).view(6, 1, 1, 1)
    flicker = (clip + torch.tensor([0.04, -0.03, 0.02]).view(1, 3, 1, 1) * sign).clamp(0, 1)
    err_flicker, _ = metrics.warping_error(flicker, clip, DISFlow())
    assert err_dis < 1e-3 and err_flicker > 5 * err_dis


def test_warping_error_matches_lai_formula_and_streams(bedroom):
    out, inp = bedroom[:5] ** 1.2, bedroom[:5]  # an "output" differing from its input
    est = DISFlow()
    err, per_pair = metrics.warping_error(out, inp, est)
    # Lai et al. evaluate_WarpError.py, pair by pair, written out
    from vidcolor.flow import occlusion_mask, warp

    expected = []
    for t in range(1, 5):
        fw, bw = est(inp[t - 1:t], inp[t:t + 1]), est(inp[t:t + 1], inp[t - 1:t])
        noc = occlusion_mask(fw, bw).expand(-1, 3, -1, -1)  # their mask image has 3 channels
        diff = (warp(out[t:t + 1], fw) - out[t - 1:t]) * noc
        expected.append(float((diff**2).sum() / noc.sum()))
    assert np.allclose(per_pair, expected, rtol=1e-5)
    assert err == pytest.approx(np.mean(expected), rel=1e-6)
    meter = metrics.WarpingErrorMeter(est)
    for i in (0, 1, 3):  # chunks of 1, 2 and 2 frames; numpy uint8 input is accepted too
        meter.update(out[i:i + (1 if i == 0 else 2)], inp[i:i + (1 if i == 0 else 2)])
    assert np.allclose(meter.per_pair, per_pair, rtol=1e-6)
    assert len(meter.per_pair_input) == 4 and meter.input_value < err
    with pytest.raises(ValueError, match="shapes differ"):
        meter.update(out[:1], inp[:1, :, :10])


def _tcvc_cdc_reference(frames_u8: np.ndarray) -> float:
    """TCVC eval_results.py (compute_JS_bgr + calculate_folders_multiple) on one clip, re-typed:
    cv2.calcHist per channel / (H*W), scipy.stats.entropy JS, dilations 1, 2, 4 weighted 1/3."""
    import cv2
    from scipy import stats

    def js(p, q):
        m = (p + q) / 2
        return 0.5 * stats.entropy(p, m) + 0.5 * stats.entropy(q, m)

    h, w = frames_u8.shape[1:3]
    hists = [[cv2.calcHist([f], [c], None, [256], [0, 256]) / (h * w) for c in range(3)] for f in frames_u8]
    means = np.zeros(3)
    for d in (1, 2, 4):
        per_c = [[float(np.ravel(js(hists[i][c], hists[i + d][c]))[0]) for i in range(len(hists) - d)] for c in range(3)]
        means += np.array([np.mean(x) for x in per_c]) / 3
    return float(np.mean(means))


def test_cdc_matches_tcvc_reference_is_zero_when_static_and_streams(bedroom):
    u8 = (bedroom[:8].permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    value = metrics.cdc(u8)
    assert value == pytest.approx(_tcvc_cdc_reference(u8), rel=1e-5)  # their histograms are float32
    assert value > 0
    assert metrics.cdc(np.repeat(u8[:1], 6, axis=0)) == 0.0
    meter = metrics.CDCMeter()
    for i in range(0, 8, 3):
        meter.update(torch.from_numpy(u8[i:i + 3]).permute(0, 3, 1, 2).float() / 255)
    assert meter.value == pytest.approx(value, rel=1e-9)


def test_colorfulness_reference_values(kodak):
    assert metrics.colorfulness(torch.full((3, 32, 32), 0.37)) == 0.0
    grey = np.repeat(kodak[..., :1], 3, axis=-1)
    assert metrics.colorfulness(torch.from_numpy(grey).permute(2, 0, 1)) == pytest.approx(0.0, abs=1e-9)
    # Hasler & Süsstrunk M^(3) written out in numpy on the 0..255 scale
    rgb = (kodak * 255).astype(np.float64)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    ref = np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())
    assert metrics.colorfulness(torch.from_numpy(kodak).permute(2, 0, 1)) == pytest.approx(ref, rel=1e-5)
    pure_red = torch.zeros(3, 8, 8)
    pure_red[0] = 1
    assert metrics.colorfulness(pure_red) == pytest.approx(0.3 * np.hypot(255, 127.5), rel=1e-9)
    with pytest.raises(ValueError, match="one frame"):
        metrics.colorfulness(torch.rand(2, 3, 8, 8))


def test_psnr_and_ssim_agree_with_scikit_image(bedroom):
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    ref = bedroom[:3]
    out = (ref + 0.05 * torch.sin(torch.arange(ref[0].numel()).float()).view_as(ref[0])).clamp(0, 1)
    ps, ss = [], []
    for i in range(3):
        a, b = ref[i].permute(1, 2, 0).double().numpy(), out[i].permute(1, 2, 0).double().numpy()
        ps.append(peak_signal_noise_ratio(a, b, data_range=1.0))
        ss.append(structural_similarity(a, b, channel_axis=-1, data_range=1.0))
    assert metrics.psnr(out, ref) == pytest.approx(np.mean(ps), rel=1e-5)
    assert metrics.ssim(out, ref) == pytest.approx(np.mean(ss), rel=1e-5)
    assert metrics.ssim(ref, ref) == pytest.approx(1.0)
    assert metrics.psnr(ref, ref) == float("inf")
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.psnr(out, ref[:2])


def test_ciede2000_agrees_with_scikit_image(kodak):
    from skimage.color import deltaE_ciede2000, rgb2lab

    a = kodak[:64, :96]
    rng = np.random.default_rng(0)
    b = np.clip(a + rng.normal(0, 0.08, a.shape), 0, 1).astype(np.float32)
    la, lb = rgb2lab(a), rgb2lab(b)
    ours = metrics.delta_e_ciede2000(torch.from_numpy(la).permute(2, 0, 1), torch.from_numpy(lb).permute(2, 0, 1))
    assert np.allclose(ours.numpy(), deltaE_ciede2000(la, lb), atol=1e-6)
    t = lambda x: torch.from_numpy(x).permute(2, 0, 1)
    assert metrics.ciede2000(t(a), t(b)) == pytest.approx(deltaE_ciede2000(la, lb).mean(), rel=1e-3)
    assert metrics.ciede2000(t(a), t(a)) == 0.0
    # Sharma et al. 2005 test data, pairs 1 and 17
    lab1 = torch.tensor([[50.0, 2.6772, -79.7751], [50.0, 2.5, 0.0]]).T.reshape(3, 1, 2)
    lab2 = torch.tensor([[50.0, 0.0, -82.7485], [73.0, 25.0, -18.0]]).T.reshape(3, 1, 2)
    assert np.allclose(metrics.delta_e_ciede2000(lab1, lab2).flatten().numpy(), [2.0425, 27.1492], atol=1e-4)


def test_as_frames_accepts_numpy_and_torch():
    u8 = np.zeros((2, 4, 5, 3), np.uint8)
    u8[..., 0] = 255
    t = metrics.as_frames(u8)
    assert t.shape == (2, 3, 4, 5) and t.dtype == torch.float32 and t[:, 0].min() == 1
    assert metrics.as_frames(torch.rand(3, 4, 5)).shape == (1, 3, 4, 5)
    with pytest.raises(ValueError, match="shape"):
        metrics.as_frames(np.zeros((4, 5)))
    with pytest.raises(TypeError):
        metrics.as_frames([1, 2, 3])
