"""``vidcolor eval``: table, JSON, contact sheet and plot on small clips; clear errors on mismatches."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from click.testing import CliRunner

from vidcolor.cli import main


def write_clip(path: Path, frames: np.ndarray, rate: int = 25) -> Path:
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=rate)
        s.height, s.width = frames.shape[1:3]
        s.pix_fmt = "yuv444p"
        s.options = {"crf": "10"}
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
