"""Colorize stage: any frame size, L untouched, chunking-invariant, overrides, guided upsampling."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.stages.helpers import tiny_colorizer
from vidcolor.color import rgb_to_lab
from vidcolor.errors import InputError, WeightsError
from vidcolor.models.pretrained import save_pretrained
from vidcolor.models.registry import build_model
from vidcolor.models.runtime import resize, working_size
from vidcolor.stages import Chunk, StageContext, build_stage
from vidcolor.ops import guided_upsample
from vidcolor.stages.colorize import Colorize

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("VIDCOLOR_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def colorizer(tmp_path: Path) -> Path:
    return tiny_colorizer(tmp_path / "tiny")


def grey(t: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(t, 1, h // 8 + 1, w // 8 + 1, generator=g)
    # 8-bit values, as decoded video (on CPU the stage computes L* from the frame's 8 bits)
    return (resize(base, (h, w)).clamp(0, 1) * 255).round().div(255).expand(t, 3, h, w).contiguous()


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
    with pytest.raises(InputError, match=r"render_size must be in \[8, 4096\], got 2"):
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


class _Jitter(torch.nn.Module):
    """The wrapped colorizer plus a random global chroma shift per frame (~10 ab units): the flicker
    of a per-frame model, on demand."""

    def __init__(self, inner: torch.nn.Module, seed: int = 0) -> None:
        super().__init__()
        self.inner, self.g = inner, torch.Generator().manual_seed(seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.inner(x)
        return out + torch.randn(out.shape[0], 2, 1, 1, generator=self.g).to(out) * 0.1


def test_temporal_removes_chroma_flicker_on_real_footage() -> None:
    """``temporal``: chroma blended at the working size with the flow-warped previous chroma; the
    warping error of the output halves against the same flickering model (the shipped colorizer
    plus per-frame jitter) without it, L* stays."""
    from tests.flow.conftest import load_bedroom
    from vidcolor.flow import DISFlow
    from vidcolor.metrics import warping_error

    x = (load_bedroom() * 255).round() / 255  # real handheld footage, 8-bit
    outs = {}
    for temporal in (0.0, 0.6):
        stage = Colorize(weights="colorize", render_size=128, temporal=temporal, flow="dis")
        stage.model = _Jitter(stage.model)
        outs[temporal] = torch.cat([stage.process(Chunk(x[i:i + 4], i)).frames for i in range(0, len(x), 4)])
        assert (stage.stabilizer is not None) == (temporal > 0)
    est = DISFlow()
    flicker, _ = warping_error(outs[0.0], x, est)
    steady, _ = warping_error(outs[0.6], x, est)
    assert steady <= 0.5 * flicker, (steady, flicker)
    assert (rgb_to_lab(outs[0.6])[:, :1] - rgb_to_lab(x)[:, :1]).abs().max() < 0.25


def test_temporal_state_is_chunk_invariant_and_resumes(colorizer: Path) -> None:
    x = grey(10, 48, 80, seed=2)
    x[5:] = torch.roll(x[5:], shifts=3, dims=-1)  # some motion for the flow

    def make() -> Colorize:
        return Colorize(weights=str(colorizer), render_size=32, batch_size=2, temporal=0.6, flow="dis")

    whole = make().process(Chunk(x, 0)).frames
    a = make()
    first = a.process(Chunk(x[:3], 0)).frames
    b = make()
    b.load_state_dict(a.state_dict())  # what a resumed run does
    rest = torch.cat([b.process(Chunk(x[3:7], 3)).frames, b.process(Chunk(x[7:], 7)).frames])
    torch.testing.assert_close(whole, torch.cat([first, rest]), atol=1e-4, rtol=0)
    assert set(a.state_dict()) >= {"prev_grey", "prev_out", "next_index"}
    assert a.state_dict()["prev_out"].shape == (2, 32, 53)  # chroma at the working size
    plain = Colorize(weights=str(colorizer), render_size=32)
    assert plain.state_dict() == {}
    with pytest.raises(ValueError, match="keeps no state"):
        plain.load_state_dict(a.state_dict())


def test_temporal_and_flow_overrides_apply_when_the_style_sets_temporal(colorizer: Path) -> None:
    spec = {"type": "colorize", "weights": str(colorizer), "render_size": 32, "temporal": 0.6}
    stage = build_stage(spec, StageContext(overrides={"temporal": 0.3, "flow": "dis"}))
    assert stage.stabilizer is not None and stage.stabilizer.strength == 0.3
    assert build_stage(spec, StageContext(overrides={"temporal": 0})).stabilizer is None  # --temporal 0: off
    # a colorize stage that is not the style's stabilizer ignores --temporal (the style's own
    # stabilize stage takes it)
    plain = {k: v for k, v in spec.items() if k != "temporal"}
    assert build_stage(plain, StageContext(overrides={"temporal": 0.8})).stabilizer is None
    with pytest.raises(InputError, match="temporal must be in"):
        build_stage({**spec, "temporal": 1.5}, StageContext())


def test_flip_tta_makes_the_colorizer_mirror_equivariant(colorizer: Path) -> None:
    """With ``flip_tta`` the output of a mirrored frame is the mirrored output (the tiny random model
    alone is not): the frame and its mirror image get one combined prediction."""
    x = grey(2, 48, 80, seed=4)
    for tta in (False, True):
        stage = Colorize(weights=str(colorizer), render_size=32, flip_tta=tta, tta_sigma=0.2)
        out, mirrored = stage.process(Chunk(x, 0)).frames, stage.process(Chunk(x.flip(-1), 0)).frames
        gap = float((out.flip(-1) - mirrored).abs().max())
        if tta:
            assert gap < 2e-3, gap
            assert stage.describe()["flip_tta"] is True
        else:
            assert gap > 0.01, gap
    with pytest.raises(ValueError, match="tta_sigma"):
        Colorize(weights=str(colorizer), flip_tta=True, tta_sigma=-1)


def test_uint8_frames_give_the_float_frames_result(colorizer: Path) -> None:
    """On CPU a run hands the colorizer the decoded 8-bit frames (it needs only their L*): the same
    output as from the float frames, and the colorize style takes that path."""
    from vidcolor.pipelines.frames import takes_uint8

    from vidcolor.styles import get_style

    x = grey(3, 48, 80, seed=5)
    u8 = (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
    stage = Colorize(weights=str(colorizer), render_size=32, temporal=0.6, flow="dis")
    assert stage.accepts_uint8
    ref = stage.process(Chunk(x, 0)).frames
    stage.reset()
    got = stage.process(Chunk(u8, 0)).frames
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=0)
    assert takes_uint8(get_style("colorize").build(StageContext()), torch.device("cpu"))


def test_luma_input_gives_the_grey_rgb_frames_result_and_pipelined_phases_change_nothing(colorizer: Path) -> None:
    """Luma (T, 1, H, W) uint8 in: RGB out (no Chunk.yuv) equals the RGB path's result on the same
    grey frames; yuv420p planes out (Chunk.yuv) come out the same whether the stage runs whole or
    split into its two pipeline steps in threads (overlap.run_stages), stabilizer state included."""
    from vidcolor.pipelines.overlap import run_stages

    x = grey(8, 48, 80, seed=3)
    luma = (x[:, :1] * 255).round().to(torch.uint8)
    # per-frame (a stabilizer's DIS flow on 8-bit grey would amplify the 1e-5 L* differences)
    a = Colorize(weights=str(colorizer), render_size=32)
    b = Colorize(weights=str(colorizer), render_size=32)
    assert a.accepts_grey
    rgb = torch.cat([a.process(Chunk(x[i:i + 4], i)).frames for i in (0, 4)])
    from_luma = torch.cat([b.process(Chunk(luma[i:i + 4], i)).frames for i in (0, 4)])
    assert from_luma.shape == rgb.shape
    # the same L* (a table, float64, against float32 shares: 1e-5 apart), which this test net's
    # x8 weights amplify in a few pixels; the real colorizer's outputs agree to rounding
    d = (from_luma - rgb).abs()
    assert d.mean() < 5e-4 and (d > 0.01).float().mean() < 0.01
    whole = Colorize(weights=str(colorizer), render_size=32, temporal=0.6)
    split = Colorize(weights=str(colorizer), render_size=32, temporal=0.6)
    chunks = [Chunk(luma[i:i + 2], i, yuv=(1, False)) for i in range(0, 8, 2)]
    ref = [whole.process(c).frames for c in chunks]
    got = [c.frames for c in run_stages([split], iter(chunks))]
    assert len(got) == 4 and all(r.shape == (2, 1, 72, 80) and torch.equal(r, g) for r, g in zip(ref, got))
    torch.testing.assert_close(whole.state_dict(), split.state_dict())
