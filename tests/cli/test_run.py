"""`vidcolor run` end to end through the CLI: real footage, bad input, grades, overwrite rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests.conftest import decode_all, make_audio_only, make_clip, packets, video_pts
from vidcolor.cli import main
from vidcolor.color import saturation
from vidcolor.io.probe import probe


def vidcolor(*args: str) -> subprocess.CompletedProcess:
    """Run the installed CLI in a subprocess (as a user would: exit codes, stderr, no traceback)."""
    exe = Path(sys.executable).with_name("vidcolor")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env={**os.environ, "CI": "true"})


def mean_saturation(frames: np.ndarray) -> float:
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    return float(saturation(x).mean())


@pytest.mark.slow
def test_run_noir_on_real_footage(shared_data, tmp_path):
    src = shared_data / "videos/sam2_01_dog.mp4"
    out = tmp_path / "o.mp4"
    r = vidcolor("-q", "run", str(src), "--style", "noir", "-o", str(out), "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["frames"] == 289 and report["output"] == str(out)
    assert video_pts(out) == video_pts(src)
    assert packets(out, "audio") == packets(src, "audio")
    m_in, m_out = probe(src), probe(out)
    assert abs(m_out.duration - m_in.duration) <= float(1 / m_in.frame_rate)
    assert m_out.frame_rate == m_in.frame_rate and m_out.tags["vidcolor_style"] == "noir"
    frames = decode_all(out)
    assert len(frames) == 289
    assert mean_saturation(frames[::20]) < 0.01  # zero chroma, up to codec rounding


def test_noir_has_zero_chroma_and_a_visible_curve(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=12, width=192, height=108)
    out = tmp_path / "noir.mp4"
    r = CliRunner().invoke(main, ["-q", "run", str(src), "--style", "noir", "-o", str(out)])
    assert r.exit_code == 0, r.output
    got, inp = decode_all(out).astype(np.float32), decode_all(src).astype(np.float32)
    assert mean_saturation(got.astype(np.uint8)) < 0.01
    # contrast: the grey levels spread wider than the input's luma (S-curve + black point); noir
    # grades the coded Y' (vidcolor.io.grey), BT.601 for this untagged SD clip
    luma_in = inp @ np.array([0.299, 0.587, 0.114], np.float32)
    assert got[..., 0].std() > 1.2 * luma_in.std()
    assert np.percentile(got[..., 0], 2) < np.percentile(luma_in, 2)  # deeper blacks


def write_identity_cube(path: Path, n: int = 17) -> Path:
    lines = ['TITLE "identity"', f"LUT_3D_SIZE {n}"]
    g = np.linspace(0, 1, n)
    for b in g:
        for gg in g:
            for r in g:
                lines.append(f"{r:.6f} {gg:.6f} {b:.6f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_identity_lut_reproduces_input(tmp_path):
    src = make_clip(tmp_path / "in.mkv", frames=6, codec="ffv1", pix_fmt="yuv444p", audio=False)
    cube = write_identity_cube(tmp_path / "id.cube")
    out = tmp_path / "lut.mkv"
    r = CliRunner().invoke(main, ["-q", "run", str(src), "--style", "lut", "--lut", str(cube), "-o", str(out),
                                  "--codec", "ffv1", "--pix-fmt", "yuv444p"])
    assert r.exit_code == 0, r.output
    diff = np.abs(decode_all(out).astype(int) - decode_all(src).astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.6  # lossless codec: only RGB<->YUV rounding


def test_lut_moves_colours(tmp_path):
    """A LUT that swaps red and blue must swap them (guards against an identity that passes by accident)."""
    from vidcolor.stages.grade import apply_lut3d, read_cube

    n = 5
    g = np.linspace(0, 1, n)
    rows = [f"{b} {gg} {r}" for b in g for gg in g for r in g]
    (tmp_path / "swap.cube").write_text(f"LUT_3D_SIZE {n}\n" + "\n".join(rows))
    x = torch.rand(2, 3, 8, 9)
    y = apply_lut3d(x, read_cube(tmp_path / "swap.cube"))
    assert torch.allclose(y, x.flip(1), atol=1e-5)


@pytest.fixture
def bad_inputs(tmp_path, shared_data):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "empty.mp4").write_bytes(b"")
    (d / "text.mp4").write_text("not a video at all\n" * 100)
    good = (shared_data / "videos/sam2_03_blocks.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(good[: len(good) // 3])
    made = make_clip(tmp_path / "made.mp4", frames=48, audio=False)
    data = made.read_bytes()
    (d / "truncated_made.mp4").write_bytes(data[: len(data) * 2 // 3])
    make_audio_only(d / "audio_only.mp4")
    return {
        "corrupt": shared_data / "videos/edge_cases/decord_corrupted.mp4",
        "truncated": d / "truncated.mp4",
        "truncated_made": d / "truncated_made.mp4",
        "zero-byte": d / "empty.mp4",
        "text": d / "text.mp4",
        "audio-only": d / "audio_only.mp4",
        "missing": d / "missing.mp4",
    }


@pytest.mark.parametrize("case", ["corrupt", "truncated", "truncated_made", "zero-byte", "text", "audio-only",
                                  "missing"])
def test_bad_input_one_line_exit_2_nothing_left(bad_inputs, tmp_path, case):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "o.mp4"
    r = vidcolor("run", str(bad_inputs[case]), "--style", "noir", "-o", str(out))
    assert r.returncode == 2, (case, r.stderr)
    errors = [line for line in r.stderr.splitlines() if line.startswith("vidcolor: error:")]
    assert len(errors) == 1 and "Traceback" not in r.stderr, r.stderr
    assert str(bad_inputs[case].name) in errors[0]
    assert list(out_dir.iterdir()) == []  # no output, no .part


def test_overwrite_rules(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=4, audio=False)
    runner = CliRunner()
    r = runner.invoke(main, ["-q", "run", str(src), "-o", str(src)])
    assert r.exit_code == 2 and "refusing to overwrite the input" in r.output
    out = tmp_path / "o.mp4"
    out.write_bytes(b"keep me")
    r = runner.invoke(main, ["-q", "run", str(src), "-o", str(out)])
    assert r.exit_code == 2 and "--overwrite" in r.output and out.read_bytes() == b"keep me"
    r = runner.invoke(main, ["-q", "run", str(src), "-o", str(out), "--overwrite"])
    assert r.exit_code == 0 and probe(out).frame_count == 4


def test_default_output_name_and_json_report(tmp_path):
    src = make_clip(tmp_path / "film.webm", frames=6, codec="libvpx-vp9", audio_codec="libopus")
    r = CliRunner().invoke(main, ["run", str(src), "--style", "sepia", "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["output"] == str(tmp_path / "film.sepia.mkv") and report["frames"] == 6
    assert packets(Path(report["output"]), "audio") == packets(src, "audio")  # opus copied into mkv


def test_ffmpeg_encoder_backend_via_cli(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=10)
    out = tmp_path / "o.mp4"
    r = CliRunner().invoke(main, ["-q", "run", str(src), "-o", str(out), "--encoder", "ffmpeg", "-e", "preset=fast"])
    assert r.exit_code == 0, r.output
    assert video_pts(out) == video_pts(src) and packets(out, "audio") == packets(src, "audio")


def test_unknown_style_and_bad_option(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=2, audio=False)
    r = CliRunner().invoke(main, ["run", str(src), "--style", "nope"])
    assert r.exit_code == 2 and "unknown style 'nope'" in r.output
    r = CliRunner().invoke(main, ["run", str(src), "-e", "novalue"])
    assert r.exit_code == 2


def test_user_style_file(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=4, audio=False)
    style = tmp_path / "mine.toml"
    style.write_text('description = "mine"\n[[stages]]\ntype = "grade"\npreset = "sepia"\ncontrast = 2.0\n')
    out = tmp_path / "o.mp4"
    r = CliRunner().invoke(main, ["-q", "run", str(src), "--style", str(style), "-o", str(out)])
    assert r.exit_code == 0, r.output
    frames = decode_all(out).astype(int)
    assert (frames[..., 0] >= frames[..., 2]).mean() > 0.95  # warm tone: red above blue


def test_noir_grain_is_deterministic_across_chunk_sizes(tmp_path):
    src = make_clip(tmp_path / "in.mkv", frames=9, codec="ffv1", audio=False)
    outs = []
    for chunk in (1, 4):
        out = tmp_path / f"g{chunk}.mkv"
        r = CliRunner().invoke(main, ["-q", "run", str(src), "--style", "noir-grain", "-o", str(out),
                                      "--codec", "ffv1", "--chunk-size", str(chunk)])
        assert r.exit_code == 0, r.output
        outs.append(decode_all(out))
    assert np.array_equal(outs[0], outs[1])


def test_version_and_help_are_fast_and_torch_free():
    code = ("import sys; from click.testing import CliRunner; from vidcolor.cli import main; "
            "r = CliRunner().invoke(main, ['--help']); assert r.exit_code == 0; "
            "assert 'torch' not in sys.modules, 'help imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True)
    r = vidcolor("--version")
    assert r.returncode == 0 and "vidcolor" in r.stdout
