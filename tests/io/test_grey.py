"""The luma-only path (``vidcolor.io.grey``): the coded Y' plane in, Y' with neutral chroma out,
the noir grade on luma, and a noir run that converts no frame to or from RGB."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch
from vidcolor.pipelines.run import takes_grey, to_tensor, to_uint8

from tests.conftest import make_clip
from vidcolor.io.grey import frame_from_luma, luma_from_frame
from vidcolor.stages.base import Chunk
from vidcolor.stages.grade import Grade


def _grey_ramp(h: int = 36, w: int = 256) -> np.ndarray:
    """(H, W) uint8: every code value in each row, plus a noisy band."""
    g = np.tile(np.arange(w, dtype=np.uint8), (h, 1))
    rng = np.random.default_rng(1)
    g[h // 2:] = rng.integers(0, 256, (h - h // 2, w), dtype=np.uint8)
    return g


@pytest.mark.parametrize("pix_fmt,full", [("yuv420p", False), ("yuv420p", True), ("yuvj420p", True),
                                          ("yuv444p", False), ("yuv422p10le", False), ("nv12", False)])
def test_grey_survives_the_trip_through_a_yuv_frame(pix_fmt: str, full: bool) -> None:
    g = _grey_ramp()
    frame = frame_from_luma(g, pix_fmt, full_range=full)
    assert frame is not None and frame.format.name == pix_fmt and (frame.width, frame.height) == (256, 36)
    if full:
        frame.color_range = 2
    back = luma_from_frame(frame)
    # limited range has 220 codes for 256 grey levels: one code value at most, full range exact
    assert np.abs(back.astype(int) - g).max() <= (0 if full and "10" not in pix_fmt else 1)
    rgb = frame.to_ndarray(format="rgb24", src_color_range=frame.color_range or None).astype(int)
    assert np.abs(rgb[..., 0] - rgb[..., 1]).max() <= 1 and np.abs(rgb[..., 2] - rgb[..., 1]).max() <= 1  # neutral
    assert np.abs(rgb[..., 1] - g).max() <= 2  # and the grey level swscale sees is ours


def test_formats_without_a_yuv_plane_are_left_to_rgb() -> None:
    assert frame_from_luma(_grey_ramp(), "rgb24", full_range=False) is None
    assert frame_from_luma(_grey_ramp(), "gbrp", full_range=False) is None


@pytest.mark.parametrize("color_range", [1, 2])
def test_decoded_luma_is_swscales_grey(color_range: int) -> None:
    """The plane copy (+ range table) gives what swscale's own yuv -> gray conversion gives."""
    rng = np.random.default_rng(0)
    yuv = rng.integers(16, 236, (48 * 3 // 2, 64), dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
    frame.color_range = color_range
    ours = luma_from_frame(frame).astype(int)
    ref = frame.to_ndarray(format="gray", src_color_range=color_range).astype(int)
    assert np.abs(ours - ref).max() <= 1


@pytest.mark.parametrize("params", [
    {"preset": "noir", "black": 0.04, "white": 0.97, "contrast": 5.0, "vignette": 0.25},
    {"preset": "noir", "contrast": 4.0, "vignette": 0.3, "grain": 0.04, "seed": 7},
    {"preset": "noir"},
])
def test_grey_grade_gives_the_float_paths_frames_on_grey_input(params: dict) -> None:
    """On grey frames Rec.709 luma is the grey value itself, so the luma path must give the RGB float
    path's frames (one code value apart where OpenCV rounds halves to even), grain included."""
    g = Grade(**params)
    assert g.accepts_grey
    grey = np.stack([_grey_ramp(), _grey_ramp()[::-1]])  # (2, H, W)
    rgb = np.repeat(grey[..., None], 3, -1)
    ref = to_uint8(g.process(Chunk(to_tensor(rgb, torch.device("cpu")), 5)).frames)
    out = g.process(Chunk(torch.from_numpy(grey).view(2, 1, *grey.shape[1:]), 5)).frames
    assert out.dtype == torch.uint8 and out.shape == (2, 1, 36, 256)
    got = to_uint8(out)[..., 0]
    diff = np.abs(got.astype(int) - ref[..., 0])
    assert diff.max() <= 1 and (diff > 0).mean() < 2e-3


def test_only_luma_only_styles_take_the_grey_path(tmp_path: Path) -> None:
    cpu = torch.device("cpu")
    assert takes_grey([Grade(preset="noir")], cpu) and takes_grey([Grade(preset="noir", grain=0.02)], cpu)
    assert not takes_grey([Grade(preset="sepia")], cpu) and not takes_grey([Grade(preset="noir", mix=0.5)], cpu)
    assert not takes_grey([], cpu) and not takes_grey([Grade(preset="noir"), Grade(preset="sepia")], cpu)
    with pytest.raises(ValueError, match="needs RGB frames"):
        Grade(preset="sepia").process(Chunk(torch.zeros(1, 1, 8, 8, dtype=torch.uint8), 0))


def _planes(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Decoded Y' and chroma planes (T, ...) of a yuv420p video, as they are in the file."""
    ys, cs = [], []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            a = f.to_ndarray(format="yuv420p")
            ys.append(a[:f.height])
            cs.append(a[f.height:])
    return np.stack(ys).astype(int), np.stack(cs).astype(int)


def _run_both_paths(src: Path, tmp_path: Path, monkeypatch, encoder: str = "pyav") -> tuple[Path, Path, list[bool]]:
    import vidcolor.pipelines.run as run_mod

    seen: list[bool] = []
    real_reader = run_mod.VideoReader

    class Recording(real_reader):  # type: ignore[misc, valid-type]
        def __init__(self, *a, **k):
            seen.append(bool(k.get("grey")))
            super().__init__(*a, **k)

    monkeypatch.setattr(run_mod, "VideoReader", Recording)
    grey_out = tmp_path / f"grey.{encoder}.mkv"
    run_mod.run(src, grey_out, "noir", codec="ffv1", encoder=encoder, resumable=False)
    monkeypatch.setattr(run_mod, "takes_grey", lambda stages, device: False)  # the RGB (uint8) path
    rgb_out = tmp_path / f"rgb.{encoder}.mkv"
    run_mod.run(src, rgb_out, "noir", codec="ffv1", encoder=encoder, resumable=False)
    monkeypatch.undo()
    return grey_out, rgb_out, seen


def test_a_noir_run_on_a_black_and_white_film_gives_the_rgb_paths_frames(shared_data: Path, tmp_path: Path,
                                                                        monkeypatch) -> None:
    """A real public-domain B&W film (its chroma is neutral, so its Y' is its RGB luma in any
    matrix): the luma path decodes no RGB and still gives the RGB path's noir, to rounding;
    lossless ffv1 output, so what is compared is what the two paths wrote."""
    import vidcolor.io.reader as reader_mod

    src = shared_data / "videos/bw/moviepy_chaplin_bw.mp4"
    shapes: list[int] = []
    real_upright = reader_mod.upright

    def recording(img, rotation):
        shapes.append(img.shape[-1])
        return real_upright(img, rotation)

    monkeypatch.setattr(reader_mod, "upright", recording)
    grey_out, rgb_out, seen = _run_both_paths(src, tmp_path, monkeypatch)
    assert seen == [True, False]
    n = len(shapes) // 2
    assert set(shapes[:n]) == {1} and set(shapes[n:]) == {3}  # the luma run decoded no RGB frame
    (yg, cg), (yr, _) = _planes(grey_out), _planes(rgb_out)
    assert yg.shape == yr.shape and yg.shape[0] == n > 200
    assert (cg == 128).all()  # neutral chroma, exactly
    diff = np.abs(yg - yr)
    assert diff.mean() < 0.5 and np.percentile(diff, 99.9) <= 3
    assert yg.std() > 20  # a real picture, not flat


@pytest.mark.parametrize("encoder", ["pyav", "ffmpeg"])
def test_grey_frames_reach_both_encoders(tmp_path: Path, monkeypatch, encoder: str) -> None:
    clip = make_clip(tmp_path / "in.mp4", frames=10, width=96, height=64)
    grey_out, rgb_out, seen = _run_both_paths(clip, tmp_path, monkeypatch, encoder)
    assert seen == [True, False]
    (yg, cg), (yr, _) = _planes(grey_out), _planes(rgb_out)
    assert yg.shape == yr.shape == (10, 64, 96)
    assert np.abs(cg - 128).max() <= 1
    # colour input: Y' (BT.601 here) against Rec.709 luma of RGB: close, not identical
    assert np.abs(yg - yr).mean() < 6
