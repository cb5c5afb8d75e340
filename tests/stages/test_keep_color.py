"""--keep-color and the colour-input warning: per-shot decisions on a grey shot cut to a colour shot,
resumable state, the CLI, and the colour measure on the shared black-and-white and colour clips."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests.stages.helpers import tiny_colorizer
from vidcolor.cli import main
from vidcolor.color import rgb_to_lab
from vidcolor.pipelines.frames import to_uint8
from vidcolor.stages import Chunk
from vidcolor.stages.colorize import Colorize
from vidcolor.stages.keep_color import colour_warning

H, W, N, CUT = 48, 64, 12, 6


@pytest.fixture(scope="module")
def colorizer(tmp_path_factory) -> Path:
    return tiny_colorizer(tmp_path_factory.mktemp("w") / "tiny")


def natural_frames(n: int, h: int, w: int, seed: int) -> np.ndarray:
    """(n, h, w, 3) uint8: colour gradients, texture and a moving square."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([xx / (w - 1), yy / (h - 1), 1 - xx / (w - 1)], -1)
    out = []
    for i in range(n):
        img = 0.2 + 0.6 * base + rng.normal(0, 0.03, (h, w, 1))
        img[10:26, 4 + 3 * i:20 + 3 * i] = rng.uniform(0, 1, 3)
        out.append(np.clip(img * 255, 0, 255).astype(np.uint8))
    return np.stack(out)


def film() -> np.ndarray:
    """(N, H, W, 3) uint8: a grey shot (frames 0-5), then a hard cut to other content in colour."""
    grey = natural_frames(CUT, H, W, seed=1)
    grey = np.repeat(grey.mean(-1, keepdims=True).round().astype(np.uint8), 3, -1)
    colour = natural_frames(N - CUT, H, W, seed=2)[:, ::-1, ::-1]
    return np.ascontiguousarray(np.concatenate([grey, colour]))


def chroma(rgb_uint8: np.ndarray) -> float:
    x = torch.from_numpy(np.ascontiguousarray(rgb_uint8)).permute(0, 3, 1, 2).float() / 255
    return float(rgb_to_lab(x)[:, 1:].norm(dim=1).mean())


def run_stage(stage: Colorize, frames: np.ndarray, chunk: int, start: int = 0) -> np.ndarray:
    out = []
    for i in range(start, len(frames), chunk):
        x = torch.from_numpy(frames[i:i + chunk]).permute(0, 3, 1, 2)  # uint8 RGB, as a CPU run gives them
        out.append(to_uint8(stage.process(Chunk(frames=x, index=i, source=x)).frames))
    return np.concatenate(out)


def test_colour_shot_kept_grey_shot_colorized(colorizer: Path) -> None:
    frames = film()
    stage = Colorize(weights=str(colorizer), render_size=32, keep_color=True, temporal=0.5, flow="dis")
    assert not stage.accepts_grey and not stage.inspects_input  # RGB in: it needs the input's colour
    out = run_stage(stage, frames, chunk=4)  # the cut falls inside the second chunk
    assert stage.keep.shots == [(0, False), (CUT, True)]
    np.testing.assert_array_equal(out[CUT:], frames[CUT:])
    assert chroma(frames[:CUT]) < 1 and chroma(out[:CUT]) > 5  # the grey shot got colour
    # the same frames however the film is chunked
    again = Colorize(weights=str(colorizer), render_size=32, keep_color=True, temporal=0.5, flow="dis")
    np.testing.assert_array_equal(run_stage(again, frames, chunk=5), out)
    # without keep_color the colour shot is colorized too
    plain = Colorize(weights=str(colorizer), render_size=32, temporal=0.5, flow="dis")
    assert np.abs(run_stage(plain, frames, chunk=4)[CUT:].astype(int) - frames[CUT:]).mean() > 2


def test_the_shot_decision_survives_a_resume(colorizer: Path) -> None:
    frames = film()

    def stage() -> Colorize:
        return Colorize(weights=str(colorizer), render_size=32, keep_color=True, temporal=0.5, flow="dis")

    whole = run_stage(stage(), frames, chunk=4)
    first = stage()
    run_stage(first, frames[:8], chunk=4)
    state = first.state_dict()
    assert any(k.startswith("keep_color.") for k in state) and any(not k.startswith("keep_color.") for k in state)
    resumed = stage()
    resumed.load_state_dict(state)
    rest = run_stage(resumed, frames, chunk=4, start=8)
    assert resumed.keep.shots == []  # frame 8 continues the colour shot: no new decision
    np.testing.assert_array_equal(rest, whole[8:])
    fresh = stage()
    run_stage(fresh, frames, chunk=4, start=8)
    assert fresh.keep.shots == [(8, True)]  # without the state frame 8 starts a shot


def sepia_toned(frames: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Black-and-white frames toned brown: a* and b* a function of L* alone, up to C*ab ~ 30."""
    from vidcolor.color import lab_to_rgb

    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    L = rgb_to_lab(x)[:, :1]
    t = L / 100
    lab = torch.cat([L, strength * (16 * t * (1 - t) + 2), strength * (50 * t * (1 - t) + 6)], 1)
    return to_uint8(lab_to_rgb(lab))


def test_warning_for_colour_input_only(colorizer: Path) -> None:
    frames = film()
    stage = Colorize(weights=str(colorizer), render_size=32)
    assert stage.accepts_grey and stage.inspects_input
    stage.inspect_input(frames[:CUT])
    assert stage.warnings == []
    stage.inspect_input(sepia_toned(frames[:CUT], 1.8))
    assert stage.warnings == []
    stage.inspect_input(frames[CUT:])
    assert len(stage.warnings) == 1 and "has colour" in stage.warnings[0] and "--keep-color" in stage.warnings[0]


def write_film(path: Path, frames: np.ndarray) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=25)
        s.height, s.width, s.pix_fmt = H, W, "bgr0"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def test_cli_keep_color_and_warning(colorizer: Path, tmp_path: Path) -> None:
    frames = film()
    src = write_film(tmp_path / "film.mkv", frames)
    common = ["run", str(src), "--style", "colorize", "--weights", str(colorizer), "--render-size", "32",
              "--codec", "ffv1", "--pix-fmt", "yuv444p", "--device", "cpu"]
    res = CliRunner().invoke(main, [*common, "-o", str(tmp_path / "kept.mkv"), "--keep-color"])
    assert res.exit_code == 0, res.output
    assert "has colour" not in res.output
    kept = decode(tmp_path / "kept.mkv")
    assert np.abs(kept[CUT:].astype(int) - frames[CUT:]).max() <= 3  # the writer's RGB -> Y'CbCr -> RGB
    assert chroma(kept[:CUT]) > 5
    res = CliRunner().invoke(main, [*common, "-o", str(tmp_path / "plain.mkv")])
    assert res.exit_code == 0, res.output
    assert "vidcolor: warning: the input has colour" in res.output and "--keep-color" in res.output
    res = CliRunner().invoke(main, ["run", str(src), "--style", "noir", "--keep-color", "-o", str(tmp_path / "n.mkv")])
    assert res.exit_code == 2 and "--keep-color does not apply to style 'noir'" in res.output


def test_shared_clips_black_and_white_toned_or_colour(shared_data: Path) -> None:
    """None of the black-and-white films, plain, sepia-toned or tinted blue, counts as colour; every
    colour clip does but moviepy_sintel_2s.mp4 (snow in a faint blue: no more colour than a tint)."""
    from vidcolor.io.probe import probe
    from vidcolor.io.sample import sample_frames

    for path in sorted((shared_data / "videos" / "bw").glob("*.mp4")):
        sample = sample_frames(path, probe(path))
        blue = np.clip(sample * np.array([0.75, 0.9, 1.1]) + np.array([0, 5, 20]), 0, 255).astype(np.uint8)
        for frames in (sample, sepia_toned(sample), sepia_toned(sample, 1.8), blue):
            assert colour_warning(frames) is None, path.name
    for path in sorted((shared_data / "videos").glob("*.mp4")):
        message = colour_warning(sample_frames(path, probe(path)))
        assert (message is None) == (path.name == "moviepy_sintel_2s.mp4"), (path.name, message)
