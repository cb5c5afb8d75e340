"""The luma-only path (``vidcolor.io.grey``): the coded Y' plane in, Y' with neutral chroma out,
the noir grade on luma, and a noir run that converts no frame to or from RGB."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch
from vidcolor.pipelines.frames import takes_grey, to_tensor, to_uint8

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


def _run_both_paths(src: Path, tmp_path: Path, monkeypatch, encoder: str = "pyav",
                    style: str = "noir") -> tuple[Path, Path, list[bool]]:
    """``style`` on ``src`` into lossless ffv1 twice: as a run picks (the luma path), then with the
    RGB path forced. Returns both outputs and, per run, whether its reader decoded luma only."""
    import vidcolor.pipelines.frames as frames_mod
    import vidcolor.pipelines.run as run_mod
    import vidcolor.pipelines.stream as stream_mod

    seen: list[bool] = []
    real_reader = stream_mod.VideoReader

    class Recording(real_reader):  # type: ignore[misc, valid-type]
        def __init__(self, *a, **k):
            seen.append(bool(k.get("grey")))
            super().__init__(*a, **k)

    monkeypatch.setattr(stream_mod, "VideoReader", Recording)
    grey_out = tmp_path / f"grey.{style}.{encoder}.mkv"
    run_mod.run(src, grey_out, style, codec="ffv1", encoder=encoder, resumable=False)
    monkeypatch.setattr(frames_mod, "takes_grey", lambda stages, device: False)  # the RGB path
    rgb_out = tmp_path / f"rgb.{style}.{encoder}.mkv"
    run_mod.run(src, rgb_out, style, codec="ffv1", encoder=encoder, resumable=False)
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


@pytest.mark.parametrize("coding", [(5, False), (1, False), (1, True), (9, False)])
def test_yuv420_planes_from_luma_and_half_size_colour_match_swscale(coding: tuple[int, bool]) -> None:
    """Flat colour patches (so 4:2:0 loses nothing): the planes made from the grey of the same
    lightness plus the colour at half size are what swscale makes from the colour frame itself,
    in each matrix and range; a grey patch keeps its luma exactly."""
    from vidcolor.color import grey_lightness, grey_lightness_table, lab_to_rgb, rgb_to_lab
    from vidcolor.io.grey import i420_from_luma

    h, w = 32, 48
    colours = [(0.8, 0.3, 0.2), (0.2, 0.6, 0.3), (0.3, 0.4, 0.9), (0.5, 0.5, 0.5), (0.9, 0.85, 0.2), (0.1, 0.1, 0.15)]
    for c in colours:
        rgb = torch.tensor(c).view(1, 3, 1, 1).expand(1, 3, h, w)
        rgb8 = (rgb * 255).round() / 255
        L = rgb_to_lab(rgb8)[:, :1]
        # the grey with that lightness, as the 8-bit grey nearest to it
        g = int(np.abs(grey_lightness_table() - float(L[0, 0, 0, 0])).argmin())
        luma = np.full((h, w), g, np.uint8)
        luma_half = np.full((h // 2, w // 2), g / 255, np.float32)
        lab = torch.cat([grey_lightness(torch.tensor(g / 255.0)).view(1, 1, 1, 1).expand(1, 1, h // 2, w // 2).float(),
                         rgb_to_lab(rgb8)[:, 1:, :h // 2, :w // 2]], 1)
        rgb_half = lab_to_rgb(lab)[0].permute(1, 2, 0).contiguous().numpy()
        ours = i420_from_luma(luma, luma_half, rgb_half, coding).astype(int)
        ref_frame = av.VideoFrame.from_ndarray((rgb_half.repeat(2, 0).repeat(2, 1) * 255).round().astype(np.uint8),
                                               format="rgb24")
        ref = ref_frame.reformat(format="yuv420p", dst_colorspace=coding[0],
                                 dst_color_range=2 if coding[1] else 1).to_ndarray().astype(int)
        assert ours.shape == ref.shape == (h * 3 // 2, w)
        assert np.abs(ours - ref).max() <= 2, (c, coding)
        if c[0] == c[1] == c[2]:  # grey: the input luma, untouched; chroma neutral
            code = g if coding[1] else round(16 + g * 219 / 255)
            assert (ours[:h] == code).all() and (np.abs(ours[h:] - 128) <= 1).all()


def test_colorize_of_a_black_and_white_film_through_luma_gives_the_rgb_paths_film(shared_data: Path, tmp_path: Path,
                                                                                 monkeypatch) -> None:
    """The real B&W film: colorized from its Y' plane into yuv420p planes (no full-size RGB frame
    anywhere) it is, to rounding, the film the RGB path makes (lossless ffv1, so what is compared
    is what each path wrote), its luminance kept as well, and the colour is really there."""
    from vidcolor.color import rgb_to_lightness

    src = shared_data / "videos/bw/moviepy_chaplin_bw.mp4"
    import vidcolor.io.writer as writer_mod

    planes_written = []
    real_to_frame = writer_mod.VideoWriter._to_frame

    def recording(self, rgb, pts):
        planes_written.append(rgb.shape[0] != self.height)
        return real_to_frame(self, rgb, pts)

    monkeypatch.setattr(writer_mod.VideoWriter, "_to_frame", recording)
    planes_out, rgb_out, seen = _run_both_paths(src, tmp_path, monkeypatch, style="colorize")
    assert seen == [True, False]
    n = len(planes_written) // 2
    assert n > 200 and all(planes_written[:n]) and not any(planes_written[n:])
    (yp, cp), (yr, cr) = _planes(planes_out), _planes(rgb_out)
    assert yp.shape == yr.shape and cp.shape == cr.shape
    dy, dc = np.abs(yp - yr), np.abs(cp - cr)
    assert dy.mean() < 0.6 and np.percentile(dy, 99.9) <= 3
    # chroma: the style's stabilizer (strength 0.95, a recursive blend with ~20 frames of memory) carries
    # a one-code rounding difference between the paths forward: 99.9th percentile 4 (3 at strength 0.9)
    assert dc.mean() < 0.3 and np.percentile(dc, 99.9) <= 4
    assert np.abs(cp - 128).mean() > 2  # coloured, not grey

    def lightness(p: Path, frames: int = 24) -> np.ndarray:
        out = []
        with av.open(str(p)) as c:
            for i, f in enumerate(c.decode(video=0)):
                if i >= frames:
                    break
                rgb = torch.from_numpy(f.to_ndarray(format="rgb24", src_colorspace=5)).permute(2, 0, 1)[None] / 255
                out.append(rgb_to_lightness(rgb.float())[0, 0].numpy())
        return np.stack(out)

    dl = np.abs(lightness(planes_out) - lightness(src))
    assert dl.mean() < 0.5 and np.percentile(dl, 99) < 2.5  # L* of the film kept (both 8-bit, both rounded)


def test_colorize_from_luma_reaches_the_ffmpeg_backend_as_rgb(tmp_path: Path, monkeypatch) -> None:
    """The ffmpeg CLI backend takes RGB: Colorize then gives RGB from the luma (Chunk.yuv unset)."""
    grey_rgb = np.repeat(_grey_ramp(64, 96)[None, ..., None], 3, -1).repeat(8, 0)
    src = tmp_path / "grey.mkv"
    with av.open(str(src), "w") as c:
        s = c.add_stream("ffv1", rate=24)
        s.width, s.height, s.pix_fmt = 96, 64, "yuv420p"
        for i, img in enumerate(grey_rgb):
            f = av.VideoFrame.from_ndarray(np.roll(img, i, 1).copy(), format="rgb24")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    planes_out, rgb_out, seen = _run_both_paths(src, tmp_path, monkeypatch, "ffmpeg", "colorize")
    assert seen == [True, False]
    (yp, cp), (yr, cr) = _planes(planes_out), _planes(rgb_out)
    assert yp.shape == (8, 64, 96)
    # the two routes round the limited-range luma to 8-bit grey differently: one code value here and there
    assert np.abs(yp - yr).max() <= 2 and np.abs(yp - yr).mean() < 0.6, (np.abs(yp - yr).max(), np.abs(yp - yr).mean())
    # and the model sees those L* differences: chroma a fraction of a code value apart on average
    # on average, a few code values on a handful of samples where the rounding moves the model's output
    dc = np.abs(cp - cr)
    assert dc.mean() < 0.3 and (dc > 2).mean() < 0.005 and dc.max() <= 6, (dc.mean(), (dc > 2).mean(), dc.max())
