"""Generic image ops (vidcolor/ops.py): the OpenCV paths match torch, agreement averaging."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vidcolor.ops import agreement_average, box_mean, guided_upsample


def test_opencv_box_and_guided_paths_match_torch() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 2, 30, 41, generator=g)
    for r in (1, 2):
        torch.testing.assert_close(box_mean(x, r), F.avg_pool2d(x, 2 * r + 1, stride=1, padding=r,
                                                                count_include_pad=False), atol=1e-6, rtol=0)
    src, lo, hi = torch.rand(2, 2, 30, 41, generator=g), torch.rand(2, 1, 30, 41, generator=g), torch.rand(2, 1, 90, 123, generator=g)
    fast = guided_upsample(src, lo, hi)
    ref = guided_upsample(src.double(), lo.double(), hi.double()).float()  # float64: the torch path
    torch.testing.assert_close(fast, ref, atol=1e-4, rtol=0)


def test_agreement_average_keeps_agreed_colour_and_drops_disputed_colour() -> None:
    a = torch.full((1, 2, 4, 4), 0.3)
    torch.testing.assert_close(agreement_average(a, a.clone(), 0.2), a)          # agreement: colour kept
    assert float(agreement_average(a, -a, 0.2).abs().max()) < 1e-6               # opposite: grey
    b = a.clone()
    b[..., :2] = -0.3                                                            # half the frame disputed
    out = agreement_average(a, b, 0.2)
    assert float(out[..., 2:].mean()) == pytest.approx(0.3) and float(out[..., :2].abs().max()) < 1e-6
    torch.testing.assert_close(agreement_average(a, b, 0.0), (a + b) / 2)      # sigma 0: the plain mean
