"""``vidcolor eval``: table, JSON, contact sheet and plot on small clips; clear errors on mismatches."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from vidcolor.cli import main


def write_clip(path: Path, frames: np.ndarray, rate: int = 25, codec: str = "libx264", pix_fmt: str = "yuv444p",
               options: dict[str, str] | None = None) -> Path:
    """RGB ``frames`` as a video (x264 4:4:4 crf 10 by default)."""
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=rate)
        s.height, s.width = frames.shape[1:3]
        s.pix_fmt = pix_fmt
        s.options = {"crf": "10"} if options is None else options
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("eval")
    rng = np.random.default_rng(0)
    h, w, n = 48, 64, 10
    yy, xx = np.mgrid[0:h, 0:w]
    ref = np.stack([np.stack([(xx * 3 + 8 * t) % 256, (yy * 4) % 256, 255 - (xx * 2 + 8 * t) % 256], -1)
                    for t in range(n)]).astype(np.uint8)
    grey = np.repeat(ref.mean(-1, keepdims=True), 3, -1).astype(np.uint8)
    noisy = np.clip(ref.astype(int) + rng.integers(-20, 20, (n, 1, 1, 3)), 0, 255).astype(np.uint8)
    return {
        "ref": write_clip(d / "ref.mp4", ref),
        "src": write_clip(d / "src.mp4", grey),
        "out": write_clip(d / "out.mp4", noisy),
        "short": write_clip(d / "short.mp4", noisy[:7]),
        "big": write_clip(d / "big.mp4", np.zeros((n, 64, 80, 3), np.uint8)),
    }


def test_eval_prints_table_and_writes_json_sheet_plot(clips, tmp_path):
    out_json, sheet, plot = tmp_path / "r.json", tmp_path / "sheet.png", tmp_path / "plot.png"
    res = CliRunner().invoke(main, ["eval", str(clips["out"]), "--source", str(clips["src"]), "--reference",
                                    str(clips["ref"]), "--json", str(out_json), "--sheet", str(sheet),
                                    "--sheet-frames", "4", "--plot", str(plot)])
    assert res.exit_code == 0, res.output
    assert "warping error" in res.output and "PSNR" in res.output
    report = json.loads(out_json.read_text())
    assert report["frames"] == 10 and report["size"] == [64, 48] and report["flow"].startswith("DIS")
    m = report["metrics"]
    assert m["warping_error"] > m["warping_error_source"] >= 0
    assert 0 < m["ssim"] <= 1 and m["psnr"] > 15 and m["ciede2000"] > 0 and m["cdc"] > 0 and m["colorfulness"] > 0
    assert len(report["per_frame"]["warping_error"]) == 9 and len(report["per_frame"]["psnr"]) == 10
    import cv2

    img = cv2.imread(str(sheet))
    assert img is not None and img.shape[1] > 4 * 100  # 4 columns of 160-px-high thumbnails
    assert img.shape[0] > 3 * 160                       # rows: source, output, reference
    assert cv2.imread(str(plot)) is not None


def test_eval_without_reference(clips):
    res = CliRunner().invoke(main, ["eval", str(clips["out"]), "-s", str(clips["src"])])
    assert res.exit_code == 0, res.output
    assert "CDC" in res.output and "PSNR" not in res.output


@pytest.mark.parametrize("other,message", [("short", "frame counts differ"), ("big", "frame sizes differ")])
def test_eval_mismatched_videos_fail_with_one_line(clips, other, message):
    res = CliRunner().invoke(main, ["eval", str(clips[other]), "--source", str(clips["src"])])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("vidcolor: error:")


def test_eval_missing_file(clips, tmp_path):
    res = CliRunner().invoke(main, ["eval", str(tmp_path / "nope.mp4"), "--source", str(clips["src"])])
    assert res.exit_code == 2 and "no such file" in res.output


def write_lossless(path: Path, frames: np.ndarray) -> Path:
    """FFV1 in RGB: decoded frames are exactly ``frames``."""
    return write_clip(path, frames, codec="ffv1", pix_fmt="bgr0", options={})


@pytest.fixture(scope="module")
def grey_baseline_clips(tmp_path_factory) -> dict[str, Path]:
    """A moving colour pattern as the reference, its black-and-white version (L* kept, a* = b* = 0)
    as source, and outputs equal to each."""
    import torch

    from vidcolor.evaluate import grey_of

    d = tmp_path_factory.mktemp("grey")
    h, w, n = 40, 56, 6
    yy, xx = np.mgrid[0:h, 0:w]
    ref = np.stack([np.stack([(xx * 4 + 10 * t) % 256, 60 + yy * 3, 255 - (xx * 3 + 7 * t) % 256], -1)
                    for t in range(n)]).astype(np.uint8)
    x = torch.from_numpy(ref).permute(0, 3, 1, 2).float() / 255
    grey = (grey_of(x) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert grey.std(axis=-1).max() <= 1  # neutral: R = G = B within rounding
    return {"ref": write_lossless(d / "ref.mkv", ref), "grey": write_lossless(d / "grey.mkv", grey)}


def eval_json(out: Path, src: Path, ref: Path, tmp_path: Path) -> tuple[dict, str]:
    report = tmp_path / "r.json"
    res = CliRunner().invoke(main, ["eval", str(out), "--source", str(src), "--reference", str(ref),
                                    "--json", str(report)])
    assert res.exit_code == 0, res.output
    return json.loads(report.read_text()), res.output


def test_output_equal_to_the_reference_beats_the_grey_baseline(grey_baseline_clips, tmp_path):
    c = grey_baseline_clips
    report, table = eval_json(c["ref"], c["grey"], c["ref"], tmp_path)
    m = report["metrics"]
    assert m["ciede2000"] == pytest.approx(0, abs=1e-6) and m["psnr"] is None  # identical: PSNR inf -> null
    assert m["ciede2000_grey"] > 5 and 10 < m["psnr_grey"] < 60
    assert len(report["per_frame"]["ciede2000_grey"]) == len(report["per_frame"]["psnr_grey"]) == 6
    assert "grey baseline" in table and "colour helped" in table and "made it worse" not in table


def test_output_equal_to_grey_scores_the_grey_baseline(grey_baseline_clips, tmp_path):
    c = grey_baseline_clips
    report, table = eval_json(c["grey"], c["grey"], c["ref"], tmp_path)
    m = report["metrics"]
    assert m["ciede2000"] == pytest.approx(m["ciede2000_grey"], abs=1e-9) and m["ciede2000"] > 5
    assert m["psnr"] == pytest.approx(m["psnr_grey"], abs=1e-9)
    assert "the same" in table and "colour helped" not in table


def test_no_grey_baseline_without_a_reference(clips, tmp_path):
    report = tmp_path / "r.json"
    res = CliRunner().invoke(main, ["eval", str(clips["out"]), "-s", str(clips["src"]), "--json", str(report)])
    assert res.exit_code == 0, res.output
    m = json.loads(report.read_text())["metrics"]
    assert m["ciede2000_grey"] is None and m["psnr_grey"] is None and "grey baseline" not in res.output


# -- flicker index and noise estimate ------------------------------------------------------------------------
def flicker_clips(d: Path) -> dict:
    """A moving clip and a still one, each clean and with i.i.d. brightness flicker of ±10 % (lossless)."""
    from tests.conftest import natural_frames
    from vidcolor.degrade import Degradation, degrade

    moving = natural_frames(16, 96, 128, seed=1)
    still = np.repeat(moving[:1], 16, axis=0)
    flicker_only = Degradation(flicker=0.1, grain=0, specks=0, scratches=0)
    out = {}
    for name, frames in (("moving", moving), ("still", still)):
        bad, rec = degrade(frames, flicker_only, seed=3)
        out[name] = (write_lossless(d / f"{name}.mkv", frames), write_lossless(d / f"{name}.flicker.mkv", bad), rec)
    return out


def eval_no_reference(out: Path, src: Path, tmp_path: Path) -> tuple[dict, str]:
    report = tmp_path / "r.json"
    res = CliRunner().invoke(main, ["eval", str(out), "--source", str(src), "--json", str(report)])
    assert res.exit_code == 0, res.output
    return json.loads(report.read_text()), res.output


def test_flicker_index_of_a_flickering_clip(tmp_path):
    clips = flicker_clips(tmp_path)
    moving, moving_bad, _ = clips["moving"]
    report, table = eval_no_reference(moving_bad, moving, tmp_path)
    m = report["metrics"]
    assert m["flicker_index"] > 8 * m["flicker_index_source"] and m["flicker_index"] > 0.03
    assert m["flicker_index_reference"] is None and "flicker_reference" not in report["per_frame"]
    assert len(report["per_frame"]["flicker"]) == len(report["per_frame"]["flicker_source"]) == 15
    assert "flicker index" in table and "noise σ" in table
    # Still content: the index is the mean relative gain change, |g_t - g_t-1| / g_t (~2 x 0.1 / 3).
    still, still_bad, rec = clips["still"]
    report, _ = eval_no_reference(still_bad, still, tmp_path)
    g = np.array(rec["gains"])
    expected = np.mean(np.abs(g[1:] - g[:-1]) / g[1:])
    assert report["metrics"]["flicker_index"] == pytest.approx(expected, rel=0.1)
    assert report["metrics"]["flicker_index_source"] < 0.002


def test_flicker_meter_skips_cuts_and_does_not_depend_on_chunks():
    from tests.conftest import natural_frames
    from vidcolor.defect_metrics import FlickerMeter
    from vidcolor.flow import DISFlow

    a = natural_frames(4, 96, 128, seed=0)
    yy, xx = np.mgrid[0:96, 0:128]
    b = np.stack([np.stack([np.sin(xx / 3 + t) * 100 + 128, (yy * 2) % 256, (xx * yy) % 256], -1)
                  for t in range(4)]).astype(np.uint8)
    clip = np.concatenate([a, b])
    whole = FlickerMeter(DISFlow())
    whole.update(clip)
    parts = FlickerMeter(DISFlow())
    for i, j in ((0, 1), (1, 5), (5, 8)):
        parts.update(clip[i:j])
    assert np.isnan(whole.per_pair[3]) and sum(np.isnan(whole.per_pair)) == 1  # the cut, and only it
    np.testing.assert_allclose(parts.per_pair, whole.per_pair, rtol=1e-6, atol=1e-9)
    assert whole.value == pytest.approx(np.nanmean(whole.per_pair))


@pytest.mark.parametrize("sigma", [3.0, 8.0, 15.0])
def test_noise_estimate_recovers_a_known_sigma(sigma):
    from vidcolor.defect_metrics import noise_sigma

    rng = np.random.default_rng(int(sigma))
    yy, xx = np.mgrid[0:240, 0:320].astype(np.float64)
    smooth = 128 + 60 * np.sin(xx / 40) * np.cos(yy / 55)
    grey = smooth[None, :, :, None] + rng.normal(0, sigma, (2, 240, 320, 1))         # the same in R, G, B
    frames = np.clip(np.repeat(grey, 3, -1).round(), 0, 255).astype(np.uint8)
    assert np.median(noise_sigma(frames)) == pytest.approx(sigma, rel=0.2)
    per_channel = smooth[None, :, :, None] + rng.normal(0, sigma, (2, 240, 320, 3))    # independent channels
    frames = np.clip(per_channel.round(), 0, 255).astype(np.uint8)
    assert np.median(noise_sigma(frames)) == pytest.approx(sigma * 0.749, rel=0.2)
    clean = np.repeat(np.round(smooth)[None, :, :, None], 3, -1).astype(np.uint8)
    assert noise_sigma(clean)[0] < 0.5  # the smooth image alone is (almost) noiseless


def test_noise_estimate_in_the_report(clips, tmp_path):
    report, _ = eval_json(clips["out"], clips["src"], clips["ref"], tmp_path)
    m, pf = report["metrics"], report["per_frame"]
    assert len(pf["noise"]) == len(pf["noise_source"]) == len(pf["noise_reference"]) == 10
    assert m["noise"] == pytest.approx(np.median(pf["noise"])) and m["noise_reference"] >= 0


def test_help_lists_flicker_and_noise():
    res = CliRunner().invoke(main, ["eval", "--help"])
    assert res.exit_code == 0 and "flicker index" in res.output and "Immerkaer" in res.output
