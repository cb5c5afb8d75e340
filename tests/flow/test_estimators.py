"""Flow estimators: DIS on a real frame, RAFT from the weights cache without network, and auto selection."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tests.flow.conftest import to_tensor
from vidcolor.errors import InputError, WeightsError
from vidcolor.flow import DISFlow, FlowEstimator, get_flow_estimator, warp


def _translated(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


@pytest.mark.parametrize("downscale", [1.0, 2.0])
def test_dis_recovers_known_translation_of_a_real_frame(sintel, downscale):
    img = sintel[0]
    dx, dy = 3.4, -2.3
    a, b = to_tensor(img), to_tensor(_translated(img, dx, dy))  # b(p) = a(p - d): flow a -> b is +d
    flow = DISFlow(preset="fast", downscale=downscale)(a, b)
    assert flow.shape == (1, 2, *img.shape[:2]) and flow.dtype == torch.float32
    inner = flow[0, :, 30:-30, 30:-30]
    assert (inner[0] - dx).abs().median().item() < 0.5
    assert (inner[1] - dy).abs().median().item() < 0.5
    # the convention: warp(b, flow) ~= a
    assert (warp(b, flow) - a)[..., 30:-30, 30:-30].abs().mean() < (b - a)[..., 30:-30, 30:-30].abs().mean() / 3


def test_dis_takes_grey_and_odd_sizes_and_validates():
    est = DISFlow(preset="ultrafast", downscale=1.5)
    assert isinstance(est, FlowEstimator)
    a = torch.rand(2, 1, 37, 51)
    assert est(a, a).shape == (2, 2, 37, 51)
    with pytest.raises(ValueError, match="same shape"):
        est(a, torch.rand(2, 1, 37, 50))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        est(torch.rand(2, 2, 8, 8), torch.rand(2, 2, 8, 8))
    with pytest.raises(ValueError, match="preset"):
        DISFlow(preset="slowest")
    with pytest.raises(ValueError, match="downscale"):
        DISFlow(downscale=0.5)


# -- RAFT ------------------------------------------------------------------------------------------------
@pytest.fixture
def offline(monkeypatch):
    """Any download attempt fails the test."""
    def no_network(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:1]}")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)


@pytest.fixture
def homes(tmp_path, monkeypatch) -> tuple[Path, Path]:
    vh, th = tmp_path / "vidcolor_home", tmp_path / "torch_home"
    monkeypatch.setenv("VIDCOLOR_HOME", str(vh))
    monkeypatch.setenv("TORCH_HOME", str(th))
    return vh, th


def _write_random_raft_small(folder: Path) -> Path:
    from torchvision.models.optical_flow import Raft_Small_Weights, raft_small

    name = Raft_Small_Weights.DEFAULT.url.rsplit("/", 1)[-1]
    assert name == "raft_small_C_T_V2-01064c6d.pth"  # torchvision's name: <weights>-<sha256 prefix>.pth
    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(raft_small(weights=None).state_dict(), folder / name)
    return folder / name


@pytest.mark.parametrize("where", ["vidcolor_home", "torch_home"])
def test_raft_loads_from_cache_without_network_and_handles_odd_sizes(homes, offline, where):
    from vidcolor.flow import RAFTFlow
    from vidcolor.flow.raft import find_cached_weights

    vh, th = homes
    folder = vh / "weights" / "torchvision" if where == "vidcolor_home" else th / "hub" / "checkpoints"
    path = _write_random_raft_small(folder)
    assert find_cached_weights("small") == path
    est = RAFTFlow("small", device="cpu", num_flow_updates=2)
    assert est.weights_path == str(path) and "RAFT-small" in est.name
    a, b = torch.rand(2, 3, 63, 71), torch.rand(2, 3, 63, 71)  # odd and small: padded inside
    flow = est(a, b)
    assert flow.shape == (2, 2, 63, 71) and flow.dtype == torch.float32 and torch.isfinite(flow).all()
    assert est(a[:, :1], b[:, :1]).shape == (2, 2, 63, 71)  # grey input


def test_raft_missing_weights_is_a_weights_error(homes, monkeypatch):
    from vidcolor.flow import RAFTFlow

    with pytest.raises(WeightsError, match="not cached"):
        RAFTFlow("small", allow_download=False)

    def fail(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fail)
    with pytest.raises(WeightsError, match=r"download\.pytorch\.org.*network unreachable"):
        RAFTFlow("small")


def test_raft_rejects_a_state_dict_of_another_architecture(homes, offline):
    from vidcolor.flow import RAFTFlow

    vh, _ = homes
    folder = vh / "weights" / "torchvision"
    folder.mkdir(parents=True)
    torch.save({"conv.weight": torch.zeros(1)}, folder / "raft_small_C_T_V2-01064c6d.pth")
    with pytest.raises(WeightsError, match="does not fit RAFT-small"):
        RAFTFlow("small")


def test_get_flow_estimator_auto_and_names(homes, offline):
    est, used = get_flow_estimator("dis")
    assert isinstance(est, DISFlow) and "DIS" in used
    est, used = get_flow_estimator("auto", device="cpu")
    assert isinstance(est, DISFlow) and "no GPU" in used
    with pytest.raises(InputError, match="unknown flow estimator"):
        get_flow_estimator("flownet2")
