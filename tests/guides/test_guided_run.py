"""Guided colorization runs end to end (``vidcolor run --style colorize --keyframes/--hints``) on
generated clips: colour stays inside its shot, reaches the shot's frames forward and backward, bad
keyframes and hints are one-line errors, the planning pass's temporary folder never outlives a run,
and a resumed run gives the frames of an uninterrupted one.

The clips are coloured scenes (a textured colour canvas moving 2 px a frame) turned grey; the colour
frames are the truth a keyframe is painted from. Output is lossless (FFV1, 4:4:4), so frames compare
exactly.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests.conftest import decode_all, encode_frames
from vidcolor.cli import main
from vidcolor.color import lab_to_rgb_keep_lightness, rgb_to_lab
from vidcolor.errors import InputError
from vidcolor.guides.runner import GuidedChroma
from vidcolor.metrics import delta_e_ciede2000
from vidcolor.pipelines import segments
from vidcolor.pipelines.run import run
from vidcolor.pipelines.segments import run_resumable
from vidcolor.pipelines.workdir import work_dir_for

H, W = 96, 160
FRAMES, CUT = 24, 12   # the second shot starts at frame CUT
PAD = 2 * FRAMES       # canvas margin for the motion
LOSSLESS = {"codec": "ffv1", "pix_fmt": "yuv444p", "resumable": False}


def lab_rgb(L: torch.Tensor, ab: torch.Tensor) -> np.ndarray:
    """L* ``(N, 1, h, w)`` and a*b* ``(N, 2, h, w)`` -> uint8 RGB ``(N, h, w, 3)`` with that L*."""
    rgb = lab_to_rgb_keep_lightness(L, ab)
    return (rgb.permute(0, 2, 3, 1) * 255).round().clamp(0, 255).to(torch.uint8).numpy()


def lab_of(rgb: np.ndarray) -> torch.Tensor:
    """uint8 RGB ``(N, h, w, 3)`` -> CIE Lab ``(N, 3, h, w)``."""
    return rgb_to_lab(torch.from_numpy(np.ascontiguousarray(rgb)).permute(0, 3, 1, 2).float() / 255)


def colour_scene(n: int, seed: int, direction: int) -> np.ndarray:
    """``n`` colour frames ``(n, H, W, 3)``: a canvas of textured lightness and slowly varying
    saturated hues, seen through a window moving 2 px right and 1 px down a frame (``direction``
    -1: the other way)."""
    rng = np.random.default_rng(seed)
    size = (H + PAD, W + 2 * PAD)
    fine = cv2.GaussianBlur(rng.uniform(0, 1, size).astype(np.float32), (0, 0), 2.5)
    fine = (fine - fine.min()) / (fine.max() - fine.min())
    coarse = cv2.GaussianBlur(rng.uniform(0, 1, size).astype(np.float32), (0, 0), 14)
    coarse = (coarse - coarse.min()) / (coarse.max() - coarse.min())
    L = torch.from_numpy(25 + 60 * fine)[None, None]
    hue = torch.from_numpy(coarse * 2 * np.pi)
    ab = torch.stack([45 * torch.cos(hue), 45 * torch.sin(hue)])[None]
    canvas = lab_rgb(L, ab)[0]
    frames = []
    for i in range(n):
        k = i if direction > 0 else n - 1 - i
        frames.append(canvas[k:k + H, 2 * k:2 * k + W])
    return np.stack(frames)


def grey_of(rgb: np.ndarray) -> np.ndarray:
    y = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in rgb])
    return np.repeat(y[..., None], 3, -1)


def write_clip(path: Path, frames: np.ndarray, rate: int = 24) -> Path:
    """Lossless FFV1 (4:4:4) Matroska, so the decoded grey is the grey written."""
    return encode_frames(path, frames, rate)


def write_png(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))
    return path


def tinted(rgb: np.ndarray, a: float, b: float) -> np.ndarray:
    """The frame's own L* with a flat a*b*: a painted keyframe of one strong colour."""
    lab = lab_of(rgb[None])
    ab = torch.empty(1, 2, *rgb.shape[:2])
    ab[:, 0], ab[:, 1] = a, b
    return lab_rgb(lab[:, :1], ab)[0]


def errors(frames: np.ndarray, truth: np.ndarray) -> torch.Tensor:
    """Mean CIEDE2000 of each frame to the truth: ``(N,)``."""
    return delta_e_ciede2000(lab_of(frames), lab_of(truth)).mean((-2, -1))


def mean_ab(frames: np.ndarray) -> torch.Tensor:
    """Mean a*, b* of each frame: ``(N, 2)``."""
    return lab_of(frames)[:, 1:].mean((2, 3))


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    """The two-shot clip: (grey film path, its decoded frames, the colour truth, plain output frames,
    their CIEDE2000 to the truth in the first shot)."""
    d = tmp_path_factory.mktemp("guided")
    truth = np.concatenate([colour_scene(CUT, 0, 1), colour_scene(FRAMES - CUT, 7, -1)])
    src = write_clip(d / "film.mkv", grey_of(truth))
    plain = run(src, d / "plain.mkv", "colorize", **LOSSLESS)
    assert plain.frames == FRAMES
    out = decode_all(d / "plain.mkv")
    return src, decode_all(src), truth, out, errors(out[:CUT], truth[:CUT])


def guided(src: Path, out: Path, **options) -> np.ndarray:
    report = run(src, out, "colorize", **LOSSLESS, **options)
    assert report.frames == FRAMES
    return decode_all(out)


def invoke(*args) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


def test_colour_never_crosses_a_scene_cut(film, tmp_path) -> None:
    src, grey, _, plain, _ = film
    kf = write_png(tmp_path / "kf" / "000000.png", tinted(grey[0], 50, 30))
    out = guided(src, tmp_path / "out.mkv", keyframes=str(kf.parent))
    diff = np.abs(out.astype(np.int16) - plain.astype(np.int16)).reshape(FRAMES, -1).max(1)
    assert (diff[CUT:] == 0).all(), diff            # the second shot: exactly the automatic colour
    assert (diff[:CUT] > 20).all(), diff
    a_out, a_plain = mean_ab(out)[:, 0], mean_ab(plain)[:, 0]
    assert (a_out[:CUT] > a_plain[:CUT] + 20).all(), (a_out, a_plain)  # the first shot: red


def test_keyframe_colour_reaches_the_frames_of_its_shot(film, tmp_path) -> None:
    src, _, truth, plain, plain_err = film
    kf = write_png(tmp_path / "kf" / "000000.png", truth[0])
    out = guided(src, tmp_path / "out.mkv", keyframes=str(kf.parent))
    err = errors(out[:CUT], truth[:CUT])
    assert (err[1:] < 0.6 * plain_err[1:]).all(), (err, plain_err)      # every frame of the shot
    assert err[1:].mean() < 0.4 * plain_err[1:].mean(), (err, plain_err)
    assert np.array_equal(out[CUT:], plain[CUT:])


def test_a_keyframe_at_the_end_of_a_shot_colours_the_frames_before_it(film, tmp_path) -> None:
    src, _, truth, plain, plain_err = film
    kf = write_png(tmp_path / "kf" / f"{CUT - 1:06d}.png", truth[CUT - 1])
    out = guided(src, tmp_path / "out.mkv", keyframes=str(kf.parent))
    err = errors(out[:CUT], truth[:CUT])
    assert (err[:-1] < 0.6 * plain_err[:-1]).all(), (err, plain_err)    # frame 0 too: the whole way back
    assert err[:-1].mean() < 0.4 * plain_err[:-1].mean(), (err, plain_err)
    assert np.array_equal(out[CUT:], plain[CUT:])


def spool_folders(folder: Path) -> list[Path]:
    return sorted(folder.glob("vidcolor-guides-*"))


@pytest.fixture
def temp_dir(tmp_path, monkeypatch) -> Path:
    """The system's temporary folder, for this test: a folder of its own."""
    d = tmp_path / "system-tmp"
    d.mkdir()
    monkeypatch.setenv("TMPDIR", str(d))
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    return d


def test_a_keyframe_of_another_scene_is_a_one_line_error(film, tmp_path, temp_dir) -> None:
    src, grey = film[:2]
    kf = write_png(tmp_path / "kf" / "000000.png", tinted(grey[CUT + 3], 40, 10))  # painted from shot 2
    with pytest.raises(InputError) as err:
        run(src, tmp_path / "api.mkv", "colorize", keyframes=str(kf.parent), **LOSSLESS)
    message = str(err.value)
    assert "\n" not in message and str(kf) in message and "best-matching frame" in message
    best = int(message.split("best-matching frame is ")[1].split()[0])
    assert CUT <= best < FRAMES, message
    assert spool_folders(temp_dir) == []

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    r = invoke("run", src, "--style", "colorize", "--keyframes", kf.parent, "-o", out_dir / "o.mkv",
               "--codec", "ffv1")
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.exit_code == 2, r.output
    assert len(lines) == 1 and lines[0].startswith("vidcolor: error: ") and "Traceback" not in r.output, r.output
    assert "000000.png" in lines[0] and "best-matching frame" in lines[0]
    assert list(out_dir.iterdir()) == []  # no output, no .part
    assert spool_folders(temp_dir) == []


def test_the_spool_folder_is_removed_after_success_failure_and_ctrl_c(film, tmp_path, temp_dir,
                                                                       monkeypatch) -> None:
    src, grey = film[:2]
    kf = write_png(tmp_path / "kf" / "000000.png", tinted(grey[0], 50, 30))
    seen: list[int] = []
    real = GuidedChroma.apply

    def spying(self, *args, **kwargs):
        seen.append(len(spool_folders(temp_dir)))  # the main pass runs with the plan on disk
        return real(self, *args, **kwargs)

    monkeypatch.setattr(GuidedChroma, "apply", spying)
    guided(src, tmp_path / "ok.mkv", keyframes=str(kf.parent))
    assert seen and set(seen) == {1}
    assert spool_folders(temp_dir) == []

    for exc in (RuntimeError("injected failure"), KeyboardInterrupt()):
        seen.clear()

        def failing(self, ab, L_small, index, *args, exc=exc, **kwargs):
            seen.append(len(spool_folders(temp_dir)))
            if index >= 8:
                raise exc
            return real(self, ab, L_small, index, *args, **kwargs)

        monkeypatch.setattr(GuidedChroma, "apply", failing)
        out = tmp_path / f"{type(exc).__name__}.mkv"
        with pytest.raises(type(exc)):
            run(src, out, "colorize", keyframes=str(kf.parent), **LOSSLESS)
        assert seen and set(seen) == {1}, seen
        assert spool_folders(temp_dir) == [], type(exc)
        assert not out.exists() and not out.with_name(out.name + ".part").exists()


def test_a_resumed_run_gives_the_frames_of_an_uninterrupted_one(film, tmp_path, monkeypatch) -> None:
    src, _, truth, _, plain_err = film
    kf = write_png(tmp_path / "kf" / "000000.png", truth[0])
    options = {"keyframes": str(kf.parent), "codec": "ffv1", "pix_fmt": "yuv444p", "segment_frames": 4}
    whole = run_resumable(src, tmp_path / "whole.mkv", "colorize", **options)
    assert whole.frames == FRAMES

    out = tmp_path / "resumed.mkv"
    real = segments.SegmentWriter._finish

    def crash_after_two(self):
        real(self)
        if len(self.done) == 2:
            raise RuntimeError("simulated crash")

    with monkeypatch.context() as m:
        m.setattr(segments.SegmentWriter, "_finish", crash_after_two)
        with pytest.raises(RuntimeError, match="simulated crash"):
            run_resumable(src, out, "colorize", **options)
    work = work_dir_for(out)
    assert not out.exists() and work.is_dir()
    state = torch.load(work / "seg-00001.state.pt", weights_only=True)
    assert {"guide.ab", "guide.conf", "guide.L", "guide.source"} <= set(state[0])  # the forward carrier
    assert int(state[0]["guide.source"]) == 0

    report = run_resumable(src, out, "colorize", **options)
    assert any(w.startswith("resumed at frame 8") for w in report.warnings), report.warnings
    got, want = decode_all(out), decode_all(tmp_path / "whole.mkv")
    assert got.shape == want.shape == (FRAMES, H, W, 3)
    assert np.array_equal(got, want)
    # past the resume point the keyframe's colour still arrives: the carrier was restored
    assert (errors(got[8:CUT], truth[8:CUT]) < 0.6 * plain_err[8:]).all()


def test_a_hinted_polygon_tints_its_region_through_the_shot(film, tmp_path) -> None:
    src, plain = film[0], film[3]
    x0, y0, x1, y1 = 40, 30, 100, 70
    hints = tmp_path / "hints.json"
    hints.write_text(json.dumps({"hints": [
        {"frame": 0, "polygon": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]], "color": "#2050e0"}]}))
    out = guided(src, tmp_path / "out.mkv", hints=str(hints))
    b_out, b_plain = lab_of(out)[:, 2], lab_of(plain)[:, 2]
    for i in (0, 3, 6):
        # the canvas moves 2 px right and 1 px down a frame: the region's pixels move left and up
        ys, xs = slice(y0 + 4 - i, y1 - 4 - i), slice(x0 + 4 - 2 * i, x1 - 4 - 2 * i)
        shift = float(b_plain[i, ys, xs].mean() - b_out[i, ys, xs].mean())
        assert shift > 25, (i, shift)  # towards blue (b* down)
    assert np.array_equal(out[CUT:], plain[CUT:])
    # far from the hint the automatic colour stays: a frame with hints alone lends no exemplar colour
    far = (slice(0, 12), slice(130, 160))
    for i in (0, 6):
        assert abs(float(b_plain[i][far].mean() - b_out[i][far].mean())) < 6


def test_a_hint_beyond_the_film_is_a_one_line_error(film, tmp_path) -> None:
    src = film[0]
    hints = tmp_path / "hints.json"
    hints.write_text(json.dumps({"hints": [{"frame": FRAMES + 5, "points": [[10, 10]], "color": "#ff0000"}]}))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    r = invoke("run", src, "--style", "colorize", "--hints", hints, "-o", out_dir / "o.mkv", "--codec", "ffv1")
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and "Traceback" not in r.output, r.output
    assert lines[0].startswith("vidcolor: error: ") and "hints.json" in lines[0]
    assert f"frame {FRAMES + 5} is beyond the film's {FRAMES} frames" in lines[0]
    assert list(out_dir.iterdir()) == []
