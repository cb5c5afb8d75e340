"""Grade stage: the 8-bit path (decoded frames graded without float conversions) gives the float
path's frames, and a noir run takes it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import make_clip
from vidcolor.pipelines.run import takes_uint8, to_tensor, to_uint8
from vidcolor.stages.base import Chunk
from vidcolor.stages.grade import Grade


def _frames(seed: int = 0) -> np.ndarray:
    """(3, H, W, 3) uint8: smooth gradients plus noise, every code value present."""
    rng = np.random.default_rng(seed)
    h, w = 48, 96
    ramp = np.linspace(0, 255, w)[None, :, None] * np.ones((h, 1, 3))
    out = np.stack([np.clip(ramp + rng.normal(0, 40, (h, w, 3)), 0, 255) for _ in range(3)])
    return out.astype(np.uint8)


@pytest.mark.parametrize("params", [
    {"preset": "noir", "black": 0.04, "white": 0.97, "contrast": 5.0, "vignette": 0.25},
    {"preset": "sepia", "black": 0.03, "contrast": 3.0, "vignette": 0.15},
    {"preset": "none", "contrast": 2.0, "vignette": 0.3},
    {"preset": "noir"},
])
def test_uint8_path_gives_the_float_paths_frames(params: dict) -> None:
    g = Grade(**params)
    assert g.accepts_uint8
    u8 = _frames()
    ref = to_uint8(g.process(Chunk(to_tensor(u8, torch.device("cpu")), 0)).frames)
    out = g.process(Chunk(torch.from_numpy(u8).permute(0, 3, 1, 2), 0)).frames
    assert out.dtype == torch.uint8 and out.shape == (3, 3, 48, 96)
    got = to_uint8(out)
    diff = np.abs(got.astype(int) - ref.astype(int))
    # OpenCV rounds exact halves to even: at most one code value apart, almost nowhere
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    if params["preset"] == "noir":
        assert (got[..., 0] == got[..., 1]).all() and (got[..., 1] == got[..., 2]).all()


def test_only_grades_that_can_skip_float_take_uint8(tmp_path: Path) -> None:
    assert not Grade(preset="noir", grain=0.03).accepts_uint8        # grain is drawn in float
    assert not Grade(preset="noir", mix=0.5).accepts_uint8
    lut = tmp_path / "id.cube"
    lut.write_text("LUT_3D_SIZE 2\n" + "".join(f"{r} {g} {b}\n" for b in (0, 1) for g in (0, 1) for r in (0, 1)))
    assert not Grade(preset="lut", lut=str(lut)).accepts_uint8
    with pytest.raises(ValueError, match="needs float frames"):
        Grade(preset="noir", grain=0.03).process(Chunk(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), 0))
    cpu = torch.device("cpu")
    assert takes_uint8([Grade(preset="noir")], cpu) and not takes_uint8([], cpu)
    assert not takes_uint8([Grade(preset="noir"), Grade(preset="noir", grain=0.01)], cpu)


def test_a_noir_run_grades_the_decoded_frames_without_float_conversion(tmp_path: Path, monkeypatch) -> None:
    import av

    import vidcolor.pipelines.run as run_mod

    clip = make_clip(tmp_path / "in.mp4", frames=12)
    ref_out = tmp_path / "float.mp4"
    # RGB frames in both runs (the luma-only path is tested in tests/io/test_grey.py)
    monkeypatch.setattr(run_mod, "takes_grey", lambda stages, device: False)
    monkeypatch.setattr(run_mod, "takes_uint8", lambda stages, device: False)  # force the float path
    run_mod.run(clip, ref_out, "noir")
    monkeypatch.undo()
    monkeypatch.setattr(run_mod, "takes_grey", lambda stages, device: False)

    def no_float(*a, **k):
        raise AssertionError("the noir run converted frames to float")

    monkeypatch.setattr(run_mod, "to_tensor", no_float)
    out = tmp_path / "u8.mp4"
    report = run_mod.run(clip, out, "noir")
    assert report.frames == 12

    def decode(p: Path) -> np.ndarray:
        with av.open(str(p)) as c:
            return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(int)

    a, b = decode(ref_out), decode(out)
    assert a.shape == b.shape and np.abs(a - b).mean() < 0.05  # the same frames into the same encoder
