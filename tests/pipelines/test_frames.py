"""uint8 <-> float frame conversions of the pipeline: the OpenCV paths give the torch results."""

from __future__ import annotations

import numpy as np
import torch

from vidcolor.pipelines.frames import to_tensor, to_uint8


def test_to_tensor_is_the_exact_division() -> None:
    u8 = np.random.default_rng(0).integers(0, 256, (3, 17, 29, 3), dtype=np.uint8)
    got = to_tensor(u8, torch.device("cpu"))
    assert got.shape == (3, 3, 17, 29) and got.dtype == torch.float32
    assert torch.equal(got, torch.from_numpy(u8).permute(0, 3, 1, 2).float() / 255)


def test_to_uint8_rounds_and_saturates_like_torch() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 19, 31, generator=g) * 1.4 - 0.2  # out-of-range values saturate
    x[0, 0, 0, :4] = torch.tensor([-1.0, 0.0, 1.0, 2.0])
    ref = x.mul(255).add(0.5).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    for layout in (x, x.contiguous(memory_format=torch.channels_last), x.double()):
        got = to_uint8(layout)
        assert got.shape == (2, 19, 31, 3) and got.dtype == np.uint8
        # OpenCV rounds exact halves to even: at most one level apart, and only there
        diff = np.abs(got.astype(int) - ref.astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    assert list(to_uint8(x)[0, 0, :4, 0]) == [0, 0, 255, 255]
