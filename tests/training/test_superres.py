"""The superres task: pairs made on the fly (crop area-downscaled -> crop), L1 against bicubic,
the tiny recipe trains and exports, and the exported style upscales a film."""

from __future__ import annotations

import json

import av
import pytest
import torch

from tests.training.conftest import env, train_clips, vidcolor
from vidcolor.errors import InputError
from vidcolor.training.recipe import find_recipe, load_recipe


def test_superres_pairs_are_the_crop_downscaled_and_the_crop():
    from vidcolor.training.objectives import build_objective

    recipe = load_recipe(find_recipe("upscale_tiny"))
    objective = build_objective(recipe, torch.device("cpu"))
    a = torch.rand(2, 1, 3, 48, 48)
    low, target, _ = objective.prepare({"a": a})
    assert low.shape == (2, 1, 3, 24, 24) and torch.equal(target, a)
    assert torch.allclose(low[0, 0, :, 0, 0], a[0, 0, :, :2, :2].mean((-1, -2)))
    # a fresh network is bicubic exactly: its L1 is the bicubic baseline's
    logs = objective.step({"a": a}, {"G": torch.optim.SGD(objective.parameters("G"), lr=0.0)})
    assert logs["L1"] == pytest.approx(logs["L1_base"], rel=1e-5)


def test_superres_recipe_rules():
    path = find_recipe("upscale_tiny")
    with pytest.raises(InputError, match="lambda_gan"):
        load_recipe(path, {"objective.lambda_gan": "1.0"})
    with pytest.raises(InputError, match="multiple of model.kwargs.scale"):
        load_recipe(path, {"data.crop": "50", "model.kwargs": "{scale = 4}"})
    with pytest.raises(InputError, match="model.arch = 'superres'"):
        load_recipe(path, {"model.arch": "unet"})


def test_tiny_recipe_trains_and_exports(data_dir, tmp_path, cache_dir):
    home = tmp_path / "home"
    e = env(VIDCOLOR_HOME=str(home))
    run = tmp_path / "run"
    data = [a for p in train_clips() for a in ("--data", p)]
    res = vidcolor(["train", "upscale_tiny", *data, "--out", str(run), "--set", f'data.cache_dir="{cache_dir}"'],
                   env=e)
    assert res.returncode == 0, res.stderr
    rows = _log(run)
    assert len(rows) == 60
    assert rows[0]["L1"] == pytest.approx(rows[0]["L1_base"], rel=1e-5)  # step 1: bicubic exactly
    last = sum(r["L1"] / r["L1_base"] for r in rows[-10:]) / 10
    assert last < 0.999  # better than bicubic on the last batches
    assert (run / "samples/step_0000060.png").is_file()
    res = vidcolor(["train", "export", str(run), "--name", "my_upscale"], env=e)
    assert res.returncode == 0, res.stderr
    config = json.loads((home / "weights/my_upscale/config.json").read_text())
    assert config["task"] == "superres" and config["arch"] == "superres" and config["kwargs"]["scale"] == 2
    style = (home / "styles/my_upscale.toml").read_text()
    assert 'type = "upscale"' in style and "factor = 2" in style and 'weights = "my_upscale"' in style

    film = data_dir / "videos/moviepy_sintel_2s.mp4"  # 48 frames, 854x480
    out = tmp_path / "film.mp4"
    res = vidcolor(["run", str(film), "--style", "my_upscale", "-o", str(out)], env=e, timeout=600)
    assert res.returncode == 0, res.stderr
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        assert (v.width, v.height, v.frames) == (1708, 960, 48)


def _log(run) -> list[dict[str, float]]:
    from vidcolor.training.trainer import read_log

    return read_log(run)
