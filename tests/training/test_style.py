"""Painting styles trained from one picture: `vidcolor train style`, its losses, export and run."""

from __future__ import annotations

import json
import shutil

import av
import numpy as np
import pytest
import torch

from tests.conftest import shared_data_dir
from vidcolor.color import lab_to_rgb_keep_lightness, rgb_to_lightness
from tests.training.conftest import env, train_clips, vidcolor
from vidcolor.models.features import PerceptualFeatures, gram, style_distance
from vidcolor.models.paintnet import PaintNet
from vidcolor.training import load_recipe, train
from vidcolor.training.recipe import find_recipe
from vidcolor.training.style import grey_rgb, scale_flow
from vidcolor.training.trainer import read_log


def painting() -> str:
    path = shared_data_dir() / "images/styles_public_domain/starry_night.jpg"
    if not path.is_file():
        pytest.skip(f"public-domain paintings not found under {shared_data_dir()} (set VIDCOLOR_SHARED_DATA)")
    return str(path)


def tiny(tmp_path, cache_dir, **sets):
    values = {"objective.style_image": painting(), "data.paths": train_clips(), "data.cache_dir": cache_dir, **sets}
    return load_recipe(find_recipe("paint_tiny"), {k: json.dumps(v) for k, v in values.items()})


def test_paintnet_keeps_the_size_and_range_and_returns_its_feature_map():
    net = PaintNet(widths=(4, 8, 8), blocks=1).eval()
    x = torch.rand(2, 3, 48, 72) * 2 - 1
    out, feat = net.features(x)
    assert out.shape == x.shape and out.abs().max() <= 1
    assert feat.shape == (2, 8, 6, 9)  # 1/8 size: where the feature temporal loss is taken


def test_scaled_flow_moves_the_same_content_and_keeps_only_reliable_cells():
    flow = torch.zeros(1, 2, 32, 48)
    flow[:, 0] = 8.0  # 8 px right at full size = 1 px at 1/8
    mask = torch.ones(1, 1, 32, 48)
    mask[..., :3, :5] = 0  # an occluded corner spoils the cell that covers it, and only that one
    small, small_mask = scale_flow(flow, mask, (4, 6))
    assert torch.allclose(small[:, 0], torch.ones(4, 6)) and torch.allclose(small[:, 1], torch.zeros(4, 6))
    assert small_mask[0, 0, 0, 0] == 0 and small_mask.sum() == 4 * 6 - 1


def test_style_loss_falls_and_every_loss_term_is_logged(tmp_path, data_dir, cache_dir):
    recipe = tiny(tmp_path, cache_dir, **{"train.steps": 40, "train.checkpoint_every": 40})
    report = train(recipe, tmp_path / "run")
    rows = read_log(tmp_path / "run")
    first = np.mean([r["style"] for r in rows[:5]])
    last = np.mean([r["style"] for r in rows[-5:]])
    assert last < 0.8 * first, (first, last)
    assert {"content", "style", "tv", "temporal", "feature_temporal", "G"} <= set(report.last)
    ckpt = torch.load(report.checkpoint, weights_only=False)
    assert {"G", "D"} <= set(ckpt["nets"])


def test_resumed_style_run_matches_an_uninterrupted_one(tmp_path, data_dir, cache_dir):
    recipe = tiny(tmp_path, cache_dir, **{"train.steps": 6, "train.checkpoint_every": 3, "objective.lambda_gan": 1.0})
    whole = train(recipe, tmp_path / "whole")
    # the run as a crash after step 3 leaves it: its step-3 checkpoint is the last one
    shutil.copytree(tmp_path / "whole", tmp_path / "split")
    (tmp_path / "split/checkpoints/step_0000006.pt").unlink()
    resumed = train(recipe, tmp_path / "split", resume=True)
    assert resumed.start_step == 3
    a = torch.load(whole.checkpoint, weights_only=False)["nets"]
    b = torch.load(resumed.checkpoint, weights_only=False)["nets"]
    for net in ("G", "D"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)


def test_grey_input_of_a_joint_style_ignores_the_colour():
    rgb = torch.rand(1, 3, 8, 8)
    g = grey_rgb(rgb)
    assert torch.equal(g[:, 0], g[:, 1]) and torch.equal(g[:, 1], g[:, 2])
    # the frame in black and white (its L*, a* = b* = 0) gives the network the same input
    bw = lab_to_rgb_keep_lightness(rgb_to_lightness(rgb), torch.zeros(1, 2, 8, 8))
    assert torch.allclose(grey_rgb(bw), g, atol=2e-3)


def test_train_style_cli_export_and_run_joint_style(tmp_path, data_dir, cache_dir):
    home = tmp_path / "home"
    e = env(VIDCOLOR_HOME=str(home))
    run = tmp_path / "run"
    data = [a for p in train_clips() for a in ("--data", p)]
    res = vidcolor(["-q", "train", "style", "--recipe", "paint_tiny", "--from-grey", "--style-image", painting(),
                    *data, "--out", str(run), "--set", f'data.cache_dir="{cache_dir}"', "--steps", "4"], env=e)
    assert res.returncode == 0, res.stderr
    res = vidcolor(["train", "export", str(run), "--name", "my-joint"], env=e)
    assert res.returncode == 0, res.stderr
    config = json.loads((home / "weights/my-joint/config.json").read_text())
    assert config["arch"] == "paintnet" and config["task"] == "stylize" and config["input"] == "grey"
    film = data_dir / "videos/intel_asl_eat.mkv"
    out = tmp_path / "film.my-joint.mp4"
    res = vidcolor(["-q", "run", str(film), "--style", "my-joint", "-o", str(out)], env=e, timeout=600)
    assert res.returncode == 0, res.stderr
    with av.open(str(out)) as c:
        assert c.streams.video[0].frames == 47 and c.streams.video[0].width == 640


def test_bad_style_image_is_a_one_line_error(tmp_path, data_dir):
    bad = tmp_path / "painting.jpg"
    bad.write_bytes(b"not an image")
    for image in (str(bad), str(tmp_path / "missing.jpg")):
        res = vidcolor(["train", "style", "--recipe", "paint_tiny", "--style-image", image,
                        "--data", train_clips()[0], "--out", str(tmp_path / "run")])
        assert res.returncode != 0 and "Traceback" not in res.stderr
        assert res.stderr.startswith("vidcolor: error:") and len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_gram_style_distance_is_zero_to_itself_and_grows_with_other_texture():
    f = PerceptualFeatures().eval()
    img = torch.rand(1, 3, 64, 64)
    flat = torch.full_like(img, 0.5)
    target = [gram(x) for x in f(img)]
    d_self, d_flat = style_distance(f(img), target), style_distance(f(flat), target)
    assert d_self.item() < 1e-6 < d_flat.item()
