"""``--mask`` through the command line: on real footage made lossless (FFV1 RGB in, FFV1 RGB out), every
pixel outside the mask comes out bit-identical to the decoded input, with the 8-bit grades, the float
path and the colorizer; masks in style files; batch and resumable runs; bad masks as one-line errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import decode_all, encode_frames
from vidcolor.cli import main
from vidcolor.masks import load_mask
from vidcolor.io.reader import VideoReader

W, H, N = 192, 108, 8
LOSSLESS = ["--codec", "ffv1", "--pix-fmt", "bgr0"]  # RGB in, RGB out: no Y'CbCr rounding either way


def real_clip(shared_data: Path, tmp_path: Path, name: str = "videos/sam2_01_dog.mp4") -> Path:
    """The first ``N`` frames of a shared clip, scaled to W x H, as lossless RGB FFV1."""
    with VideoReader(shared_data / name) as r:
        frames = next(r.chunks(N)).frames
    small = np.stack([cv2.resize(f, (W, H), interpolation=cv2.INTER_AREA) for f in frames])
    return encode_frames(tmp_path / "in.mkv", small, pix_fmt="bgr0")


def cli(*args: str):
    r = CliRunner().invoke(main, ["-q", *map(str, args)])
    return r


def regions_toml(path: Path, feather: int = 6) -> Path:
    path.write_text(f"feather = {feather}\n[[region]]\nframes = [0, 3]\nrect = [30, 20, 80, 50]\n"
                    "[[region]]\npolygon = [[120, 10], [185, 40], [140, 100]]\n")
    return path


def check_outside(src: Path, out: Path, mask_file: Path) -> None:
    """Every pixel of weight 0 equal to the input's, bit for bit; the pixels of weight 1 changed."""
    a, b = decode_all(src), decode_all(out)
    assert a.shape == b.shape == (N, H, W, 3)
    mask = load_mask(mask_file)
    try:
        for i in range(N):
            w = mask.weights(i, H, W)
            assert (w == 0).sum() > 1000 and (w == 1).sum() > 500
            assert np.array_equal(b[i][w == 0], a[i][w == 0]), f"frame {i}: pixels outside the mask changed"
            assert (b[i][w == 1] != a[i][w == 1]).any(axis=-1).mean() > 0.5
    finally:
        mask.close()


@pytest.mark.parametrize("style", ["noir", "sepia", "noir-grain"])
def test_grades_inside_a_region_mask_leave_the_rest_bit_identical(shared_data, tmp_path, style):
    src = real_clip(shared_data, tmp_path)
    mask = regions_toml(tmp_path / "m.toml")
    out = tmp_path / "o.mkv"
    r = cli("run", src, "-o", out, "--style", style, "--mask", mask, *LOSSLESS, "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["stages"][0]["mask"]["file"] == str(mask) and report["stages"][0]["mask"]["feather"] == 6
    check_outside(src, out, mask)


def test_a_mask_video_shorter_than_the_clip(shared_data, tmp_path):
    src = real_clip(shared_data, tmp_path)
    frames = np.zeros((3, H // 2, W // 2, 3), np.uint8)  # 3 frames at half size: the last one holds
    for i in range(3):
        frames[i, 5 + 10 * i:30 + 10 * i, 10:80] = 255
    mask = encode_frames(tmp_path / "matte.mkv", frames)
    out = tmp_path / "o.mkv"
    r = cli("run", src, "-o", out, "--style", "sepia", "--mask", mask, *LOSSLESS)
    assert r.exit_code == 0, r.output
    check_outside(src, out, mask)
    m = load_mask(mask)
    assert np.array_equal(m.weights(7, H, W), m.weights(2, H, W)) and not np.array_equal(m.weights(0, H, W),
                                                                                        m.weights(2, H, W))
    m.close()


@pytest.mark.slow
def test_colorize_inside_a_png_mask_leaves_the_rest_bit_identical(shared_data, tmp_path):
    src = real_clip(shared_data, tmp_path, "videos/bw/moviepy_chaplin_bw.mp4")
    png = np.zeros((54, 96), np.uint8)  # half size: resized to the frame
    cv2.circle(png, (48, 27), 22, 255, -1)
    cv2.imwrite(str(tmp_path / "spot.png"), png)
    mask = tmp_path / "spot.toml"  # the PNG with a feather
    mask.write_text('source = "spot.png"\nfeather = 5\n')
    out = tmp_path / "c.mkv"
    r = cli("run", src, "-o", out, "--style", "colorize", "--mask", mask, *LOSSLESS)
    assert r.exit_code == 0, r.output
    check_outside(src, out, mask)
    inside = load_mask(mask).weights(0, H, W) == 1
    hsv = cv2.cvtColor(decode_all(out)[N // 2], cv2.COLOR_RGB2HSV)
    assert hsv[..., 1][inside].mean() > 3 * max(1.0, hsv[..., 1][~inside].mean())  # colour only inside


def test_a_stage_mask_in_a_style_file_and_a_resumable_run(shared_data, tmp_path):
    src = real_clip(shared_data, tmp_path)
    looks = tmp_path / "looks"
    looks.mkdir()
    regions_toml(looks / "m.toml", feather=0)
    style = looks / "half-sepia.toml"
    style.write_text('[[stages]]\ntype = "grade"\npreset = "sepia"\nmask = "m.toml"\n')
    plain, resumed = tmp_path / "p.mkv", tmp_path / "r.mkv"
    assert cli("run", src, "-o", plain, "--style", style, *LOSSLESS).exit_code == 0
    r = cli("run", src, "-o", resumed, "--style", style, *LOSSLESS, "--resumable")
    assert r.exit_code == 0, r.output
    check_outside(src, plain, looks / "m.toml")
    assert np.array_equal(decode_all(plain), decode_all(resumed))


def test_batch_takes_the_mask_and_redoes_files_when_it_changes(shared_data, tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    src = real_clip(shared_data, folder)
    mask = regions_toml(tmp_path / "m.toml")
    args = ["batch", folder, "-o", out, "--style", "sepia", "--mask", mask, *LOSSLESS, "--json"]
    r = cli(*args)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["counts"]["done"] == 1
    check_outside(src, out / "in.mkv", mask)
    manifest = json.loads((out / "vidcolor-batch.json").read_text())
    assert list(manifest["settings"]["masks"]) == [str(mask)]
    assert json.loads(cli(*args).stdout)["counts"]["skipped"] == 1
    regions_toml(mask, feather=2)  # the same path, new content: the file is redone
    os.utime(mask)
    assert json.loads(cli(*args).stdout)["counts"]["done"] == 1


@pytest.mark.parametrize("name,content,message", [
    ("nope.png", None, "mask file not found"),
    ("bad.png", b"\x89PNG broken", "cannot read the mask image"),
    ("black.png", "black", "the mask is empty"),
    ("bad.toml", b"feather = 2\n[[region]]\nrect = [0, 0, 4, 4]\nshape = 1\n", "unknown key 'shape'"),
    ("late.toml", b"[[region]]\nrect = [0, 0, 4, 4]\nfeather = 2\n", "go before the first [[region]]"),
    ("bad.mp4", b"\x00" * 64, "bad.mp4"),
])
def test_bad_masks_are_one_line_errors(tmp_path, name, content, message):
    src = encode_frames(tmp_path / "in.mkv", np.zeros((2, 16, 16, 3), np.uint8))
    path = tmp_path / name
    if content == "black":
        cv2.imwrite(str(path), np.zeros((8, 8), np.uint8))
    elif content is not None:
        path.write_bytes(content)
    r = cli("run", src, "-o", tmp_path / "o.mkv", "--style", "sepia", "--mask", path)
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vidcolor: error:") and message in lines[0], r.stderr
    assert not (tmp_path / "o.mkv").exists()
