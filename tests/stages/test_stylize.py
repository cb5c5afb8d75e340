"""Stylize stage: any frame size, keep_luma, detail, task and parameter checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vidcolor.color import rgb_to_lab
from vidcolor.errors import InputError, WeightsError
from vidcolor.models.pretrained import save_pretrained
from vidcolor.models.registry import build_model
from vidcolor.stages import Chunk, StageContext, build_stage
from vidcolor.stages.stylize import Stylize


@pytest.fixture
def stylizer(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    kwargs = {"ngf": 4, "n_blocks": 1}
    return save_pretrained(build_model("resnet", **kwargs), tmp_path / "sty",
                           {"arch": "resnet", "kwargs": kwargs, "task": "stylize"})


def frames(t: int, h: int, w: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.nn.functional.interpolate(torch.rand(t, 3, h // 6 + 1, w // 6 + 1, generator=g), size=(h, w),
                                           mode="bilinear", align_corners=False).clamp(0, 1)


@pytest.mark.parametrize("size", [(720, 1280), (240, 426), (241, 321)])
def test_any_size(stylizer: Path, size: tuple[int, int]) -> None:
    stage = Stylize(weights=str(stylizer), render_size=64, batch_size=2)
    x = frames(3, *size)
    out = stage.process(Chunk(x, 0)).frames
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
    assert (out - x).abs().mean() > 0.01  # the model did something


def test_keep_luma_keeps_source_L(stylizer: Path) -> None:
    x = frames(2, 120, 200)
    out = Stylize(weights=str(stylizer), render_size=32, keep_luma=True).process(Chunk(x, 0)).frames
    assert (rgb_to_lab(out)[:, :1] - rgb_to_lab(x)[:, :1]).abs().max() < 0.25
    plain = Stylize(weights=str(stylizer), render_size=32).process(Chunk(x, 0)).frames
    assert (rgb_to_lab(plain)[:, :1] - rgb_to_lab(x)[:, :1]).abs().max() > 1.0


def test_detail_adds_back_source_high_frequencies(stylizer: Path) -> None:
    x = frames(1, 120, 200)
    x = (x + 0.2 * (torch.rand(1, 1, 120, 200, generator=torch.Generator().manual_seed(2)) - 0.5)).clamp(0, 1)

    def hf(img: torch.Tensor) -> torch.Tensor:  # high-pass of L
        L = rgb_to_lab(img)[:, :1]
        return L - torch.nn.functional.avg_pool2d(L, 5, 1, 2, count_include_pad=False)

    plain = Stylize(weights=str(stylizer), render_size=32).process(Chunk(x, 0)).frames
    detail = Stylize(weights=str(stylizer), render_size=32, detail=1.0).process(Chunk(x, 0)).frames
    src = hf(x)
    corr = lambda a: torch.corrcoef(torch.stack([a.flatten(), src.flatten()]))[0, 1]  # noqa: E731
    assert corr(hf(detail)) > corr(hf(plain)) + 0.3


def test_checks(stylizer: Path, tmp_path: Path) -> None:
    col = save_pretrained(build_model("unet", ngf=4, num_downs=5), tmp_path / "col",
                          {"arch": "unet", "kwargs": {"ngf": 4, "num_downs": 5}, "task": "colorize",
                           "l_norm": [50, 50], "ab_scale": 110})
    with pytest.raises(WeightsError, match="colorize model, the stylize stage needs stylize weights"):
        Stylize(weights=str(col))
    with pytest.raises(InputError, match=r"detail must be in \[0, 1\]"):
        build_stage({"type": "stylize", "weights": str(stylizer), "detail": 2}, StageContext())
    stage = build_stage({"type": "stylize", "weights": "style_monet"},
                        StageContext(overrides={"weights": str(stylizer), "render_size": 40}))
    assert stage.render_size == 40 and stage.describe()["arch"] == "resnet"
