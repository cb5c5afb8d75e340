"""docs/models/train_colorizer.py: a shipped colorizer's stages in one resumable command."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import REPO
from tests.training.conftest import PY, env, small_sets, train_clips

SCRIPT = REPO / "docs" / "models" / "train_colorizer.py"


def _run(tmp_path, cache_dir, data_dir, model: str = "colorize-fast") -> subprocess.CompletedProcess:
    sets = small_sets(cache_dir, **{"train.steps": "2", "train.decay_start": "1", "train.checkpoint_every": "1",
                                    "data.paths": json.dumps(train_clips()[:1]), "data.max_frames": "8"})
    e = env(VIDCOLOR_HOME=str(tmp_path / "home"), VIDCOLOR_SHARED_DATA=str(data_dir))
    return subprocess.run([PY, str(SCRIPT), "--model", model, "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "weights"),
                           "--stages", "2", "--frames", "1", "--images", "1", *sets],
                          cwd=REPO, capture_output=True, text=True, env=e, timeout=600, check=False)


def test_stages_chain_resume_and_write_a_calibrated_weights_folder(tmp_path, cache_dir, data_dir):
    res = _run(tmp_path, cache_dir, data_dir)
    assert res.returncode == 0, res.stderr[-2000:]
    # stage 2 starts from what stage 1 exported (its recipe's init_from = "colorize_stage1")
    assert (tmp_path / "home/weights/colorize_stage1/weights.safetensors").is_file()
    assert (tmp_path / "home/weights/colorize_stage2/weights.safetensors").is_file()
    cfg = json.loads((tmp_path / "weights/config.json").read_text())
    assert cfg["meta"]["step"] == 2 and cfg["meta"]["recipe"]["name"] == "colorize_ship_stage2"
    cal = cfg["meta"]["chroma_calibration"]
    assert cal["gain"] in (0.8, 0.9, 1.0, 1.1, 1.2, 1.4)
    assert cfg["ab_scale"] == pytest.approx(cal["ab_scale_trained"] * cal["gain"])

    # after a crash in stage 2 (its last checkpoint gone) the same command resumes it; stage 1 is skipped
    (tmp_path / "runs/colorize_ship2/checkpoints/step_0000002.pt").unlink()
    res = _run(tmp_path, cache_dir, data_dir)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "colorize_ship: finished (2 steps), skipped" in res.stdout
    assert f"+ vidcolor train --resume --out {tmp_path / 'runs/colorize_ship2'}" in res.stdout
    assert (tmp_path / "runs/colorize_ship2/checkpoints/step_0000002.pt").is_file()


def test_every_stage_recipe_loads_and_starts_from_the_stage_before():
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_colorizer", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    from vidcolor.training.recipe import load_recipe

    previous = ""  # stage 1 starts from random weights
    for recipe_name, _, export_name in mod.FAST_STAGES:  # colorize-fast
        r = load_recipe(REPO / "configs" / "train" / f"{recipe_name}.toml")
        assert r.model.init_from == previous, recipe_name
        assert "eval" in r.data.exclude_splits and r.objective.task == "colorize"
        assert r.model.kwargs == {"num_downs": 7, "ngf": 16, "norm": "batch"}  # the shipped architecture
        previous = export_name
    assert r.objective.lambda_ciede == 1.0 and r.objective.lambda_l1 == 0.0  # the last stages train on CIEDE2000

    from vidcolor.models.weights import WEIGHTS

    previous = ""
    for recipe_name, _, export_name in mod.STAGES:  # colorize: the ImageNet-encoder classifier
        r = load_recipe(REPO / "configs" / "train" / f"{recipe_name}.toml")
        assert r.model.init_from == previous, recipe_name
        assert "eval" in r.data.exclude_splits and r.model.arch == "effunet" and r.objective.lambda_class > 0
        previous = export_name
    shipped = {k: v for k, v in WEIGHTS["colorize"].kwargs.items() if k not in ("temperature", "chroma_gain")}
    trained = {k: v for k, v in r.model.kwargs.items() if k not in ("temperature", "chroma_gain", "frozen_blocks")}
    assert {k: v for k, v in shipped.items() if k != "frozen_blocks"} == {**trained, "decoder_channels":
                                                                           list(trained["decoder_channels"])}
