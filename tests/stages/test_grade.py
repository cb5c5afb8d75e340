"""Grade stage: the 8-bit path (decoded frames graded without float conversions) gives the float
path's frames, and a noir run takes it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import make_clip
from vidcolor.pipelines.frames import takes_uint8, to_tensor, to_uint8
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

    import vidcolor.pipelines.frames as frames_mod
    import vidcolor.pipelines.run as run_mod

    clip = make_clip(tmp_path / "in.mp4", frames=12)
    ref_out = tmp_path / "float.mp4"
    # RGB frames in both runs (the luma-only path is tested in tests/io/test_grey.py)
    monkeypatch.setattr(frames_mod, "takes_grey", lambda stages, device: False)
    monkeypatch.setattr(frames_mod, "takes_uint8", lambda stages, device: False)  # force the float path
    run_mod.run(clip, ref_out, "noir")
    monkeypatch.undo()
    monkeypatch.setattr(frames_mod, "takes_grey", lambda stages, device: False)

    def no_float(*a, **k):
        raise AssertionError("the noir run converted frames to float")

    monkeypatch.setattr(frames_mod, "to_tensor", no_float)
    out = tmp_path / "u8.mp4"
    report = run_mod.run(clip, out, "noir")
    assert report.frames == 12

    def decode(p: Path) -> np.ndarray:
        with av.open(str(p)) as c:
            return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(int)

    a, b = decode(ref_out), decode(out)
    assert a.shape == b.shape and np.abs(a - b).mean() < 0.05  # the same frames into the same encoder


def _cube(path: Path, n: int = 2, head: str = "", rows: list[str] | None = None) -> Path:
    g = np.linspace(0, 1, n)
    body = rows if rows is not None else [f"{r} {gg} {b}" for b in g for gg in g for r in g]
    path.write_text(f"{head}LUT_3D_SIZE {n}\n" + "\n".join(body) + "\n")
    return path


@pytest.mark.parametrize("case,message", [
    ("nan row", "bad .cube line '0.0 nan 0.0' (row: numbers must be finite)"),
    ("inf row", "bad .cube line '1e999 0.0 0.0' (row: numbers must be finite)"),
    ("domain equal", "DOMAIN_MIN [0.0, 0.0, 0.0] must be below DOMAIN_MAX [1.0, 0.0, 1.0] on every channel"),
    ("domain reversed", "DOMAIN_MIN [1.0, 1.0, 1.0] must be below DOMAIN_MAX [0.0, 0.0, 0.0]"),
    ("domain nan", "(DOMAIN_MAX: numbers must be finite)"),
    ("size 1", "LUT_3D_SIZE must be in [2, 256]"),
    ("size 100000", "LUT_3D_SIZE must be in [2, 256]"),
    ("rows missing", "LUT_3D_SIZE 2 needs 8 rows, found 7"),
    ("binary", "not a .cube LUT (binary data, not text)"),
])
def test_read_cube_refuses_hostile_files(tmp_path: Path, case: str, message: str) -> None:
    from vidcolor.errors import InputError
    from vidcolor.stages.grade import read_cube

    path = tmp_path / "x.cube"
    good = [f"{r} {g} {b}" for b in (0.0, 1.0) for g in (0.0, 1.0) for r in (0.0, 1.0)]
    if case == "nan row":
        _cube(path, rows=good[:3] + ["0.0 nan 0.0"] + good[4:])
    elif case == "inf row":
        _cube(path, rows=["1e999 0.0 0.0"] + good[1:])
    elif case == "domain equal":
        _cube(path, head="DOMAIN_MIN 0 0 0\nDOMAIN_MAX 1 0 1\n")
    elif case == "domain reversed":
        _cube(path, head="DOMAIN_MIN 1 1 1\nDOMAIN_MAX 0 0 0\n")
    elif case == "domain nan":
        _cube(path, head="DOMAIN_MAX 1 nan 1\n")
    elif case == "size 1":
        _cube(path, n=1)
    elif case == "size 100000":
        path.write_text("LUT_3D_SIZE 100000\n0 0 0\n")
    elif case == "rows missing":
        _cube(path, rows=good[:7])
    else:
        path.write_bytes(b"\x00\x01LUT_3D_SIZE 2\x00" * 50)
    with pytest.raises(InputError) as err:
        read_cube(path)
    assert str(err.value).startswith(str(path)) and message in str(err.value), err.value
    assert "\n" not in str(err.value)


def test_read_cube_keeps_long_bad_lines_short(tmp_path: Path) -> None:
    from vidcolor.errors import InputError
    from vidcolor.stages.grade import read_cube

    path = _cube(tmp_path / "x.cube", rows=["0 0 " + "9" * 500])
    with pytest.raises(InputError) as err:
        read_cube(path)
    assert len(str(err.value)) < 200


@pytest.mark.parametrize("params,message", [
    ({"contrast": float("nan")}, "contrast must be a finite number"),
    ({"contrast": float("inf")}, "contrast must be a finite number"),
    ({"grain": float("inf")}, "grain"),
    ({"grain": float("nan")}, "grain"),
    ({"vignette": float("nan")}, "vignette"),
    ({"preset": "sepia", "tint": (0.0, 0.0, 0.0)}, "tint must be three finite numbers"),
    ({"preset": "sepia", "tint": (1.0, float("nan"), 0.5)}, r"tint must be a finite number in \[0, 255\]"),
])
def test_grade_refuses_non_finite_parameters(params: dict, message: str) -> None:
    """The Python API too (the style check covers TOML files): no NaN reaches a frame."""
    from vidcolor.errors import InputError

    with pytest.raises((InputError, ValueError), match=message):
        Grade(**params)
