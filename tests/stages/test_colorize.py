"""Colorize stage: any frame size, L untouched, chunking-invariant, overrides, guided upsampling."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from vidcolor.color import rgb_to_lab
from vidcolor.errors import InputError, WeightsError
from vidcolor.models.pretrained import save_pretrained
from vidcolor.models.registry import build_model
from vidcolor.models.runtime import resize, working_size
from vidcolor.stages import Chunk, StageContext, build_stage
from vidcolor.stages.colorize import Colorize, guided_upsample

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("VIDCOLOR_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def colorizer(tmp_path: Path) -> Path:
    """Tiny 1 -> 2 U-Net, weights scaled up so its ab is strong (often out of gamut)."""
    torch.manual_seed(0)
    kwargs = {"ngf": 4, "num_downs": 5}
    model = build_model("unet", **kwargs)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 4:
                p.mul_(8)
    return save_pretrained(model, tmp_path / "tiny", {"arch": "unet", "kwargs": kwargs, "task": "colorize",
                                                      "l_norm": [50, 50], "ab_scale": 110})


def grey(t: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(t, 1, h // 8 + 1, w // 8 + 1, generator=g)
    return resize(base, (h, w)).clamp(0, 1).expand(t, 3, h, w).contiguous()


@pytest.mark.parametrize("size", [(720, 1280), (240, 426), (241, 321)])
def test_any_size_and_luminance_untouched(colorizer: Path, size: tuple[int, int]) -> None:
    stage = Colorize(weights=str(colorizer), render_size=64, batch_size=2)
    x = grey(3, *size)
    out = stage.process(Chunk(x, 0, pts=[0, 1, 2])).frames
    assert out.shape == x.shape and out.dtype == torch.float32
    assert 0 <= out.min() and out.max() <= 1
    lab_in, lab_out = rgb_to_lab(x), rgb_to_lab(out)
    assert (lab_out[:, :1] - lab_in[:, :1]).abs().max() < 0.25  # far below one 8-bit step (~0.4 L)
    assert (lab_out[:, 1:] - lab_in[:, 1:]).abs().mean() > 1.0  # colour was added


def test_chunking_does_not_change_the_result(colorizer: Path) -> None:
    stage = Colorize(weights=str(colorizer), render_size=32, batch_size=3)
    x = grey(4, 48, 80, seed=1)
    whole = stage.process(Chunk(x, 0)).frames
    parts = torch.cat([stage.process(Chunk(x[:2], 0)).frames, stage.process(Chunk(x[2:], 2)).frames])
    # batch shapes change the conv kernels float32 rounding, nothing else (1e-4 << one 8-bit step)
    torch.testing.assert_close(whole, parts, atol=1e-4, rtol=0)


def test_from_config_reads_overrides(colorizer: Path, tmp_path: Path) -> None:
    ctx = StageContext(overrides={"render_size": 48, "weights": str(colorizer), "precision": "fp32"})
    stage = build_stage({"type": "colorize", "weights": "colorize", "render_size": 256}, ctx)
    assert (stage.render_size, stage.weights, stage.precision) == (48, str(colorizer), "fp32")
    with pytest.raises(InputError, match="render_size must be an int >= 8"):
        build_stage({"type": "colorize", "weights": str(colorizer), "render_size": 2}, StageContext())
    with pytest.raises(InputError, match="precision must be one of"):
        build_stage({"type": "colorize", "weights": str(colorizer), "precision": "fp8"}, StageContext())
    sty = save_pretrained(build_model("resnet", ngf=4, n_blocks=1), tmp_path / "sty",
                          {"arch": "resnet", "kwargs": {"ngf": 4, "n_blocks": 1}, "task": "stylize"})
    with pytest.raises(WeightsError, match="stylize model, the colorize stage needs colorize weights"):
        Colorize(weights=str(sty))


def test_precision_auto_follows_the_hardware(colorizer: Path, monkeypatch) -> None:
    import vidcolor.models.runtime as runtime

    # auto on CPU: bf16 only where the CPU computes it natively, else fp32
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: False)
    assert Colorize(weights=str(colorizer)).dtype is None
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: True)
    assert Colorize(weights=str(colorizer)).dtype == torch.bfloat16
    assert Colorize(weights=str(colorizer), precision="fp32").dtype is None
    stage = Colorize(weights=str(colorizer), render_size=32, precision="bf16")
    assert stage.dtype == torch.bfloat16
    x = grey(1, 40, 56)
    out = stage.process(Chunk(x, 0)).frames
    assert out.dtype == torch.float32 and (rgb_to_lab(out)[:, :1] - rgb_to_lab(x)[:, :1]).abs().max() < 0.25


def test_guided_upsampling_sharpens_chroma_edges() -> None:
    """Measured on real colour photos (train split): downsample, upsample ab both ways, compare."""
    from PIL import Image

    files = sorted((SHARED / "images" / "color_cq100").glob("*.png"))[8:14]
    if not files:
        pytest.skip(f"no colour photos under {SHARED / 'images' / 'color_cq100'}")
    edge_bil = edge_gui = mean_bil = mean_gui = 0.0
    for f in files:
        x = torch.from_numpy(np.array(Image.open(f).convert("RGB"), dtype=np.float32) / 255).permute(2, 0, 1)[None]
        lab = rgb_to_lab(x)
        L, ab = lab[:, :1], lab[:, 1:]
        small = working_size(*L.shape[-2:], 128)
        L_s, ab_s = resize(L, small), resize(ab, small)
        bil = resize(ab_s, tuple(L.shape[-2:]))
        gui = guided_upsample(ab_s / 110, L_s / 100, L / 100) * 110
        grad = (ab[..., 1:, 1:] - ab[..., :-1, 1:]).abs().sum(1) + (ab[..., 1:, 1:] - ab[..., 1:, :-1]).abs().sum(1)
        edges = grad > grad.flatten().quantile(0.9)
        edge_bil += (bil - ab)[..., 1:, 1:].abs().sum(1)[edges].mean().item()
        edge_gui += (gui - ab)[..., 1:, 1:].abs().sum(1)[edges].mean().item()
        mean_bil += (bil - ab).abs().mean().item()
        mean_gui += (gui - ab).abs().mean().item()
    assert edge_gui < 0.95 * edge_bil  # at least 5% less chroma error on edges
    assert mean_gui < 1.05 * mean_bil  # and no worse overall


def test_compile_flag_gives_the_eager_result(colorizer: Path) -> None:
    """--compile (torch.compile, inductor) on CPU: same colours as eager within float rounding."""
    ctx = StageContext(overrides={"weights": str(colorizer), "compile": True, "precision": "fp32"})
    compiled = build_stage({"type": "colorize", "render_size": 32}, ctx)
    eager = Colorize(weights=str(colorizer), render_size=32, precision="fp32")
    assert compiled.compile and compiled.describe()["compile"] is True and not eager.compile
    x = grey(2, 48, 80, seed=3)
    torch.testing.assert_close(compiled.process(Chunk(x, 0)).frames, eager.process(Chunk(x, 0)).frames,
                               atol=1e-3, rtol=0)
