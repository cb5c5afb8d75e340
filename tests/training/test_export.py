"""Export: weights + style in VIDCOLOR_HOME, then `vidcolor run --style NAME` end to end; eval."""

from __future__ import annotations

import json

import av

from tests.training.conftest import env, small_sets, train_clips, vidcolor


def test_exported_model_runs_through_vidcolor_run(data_dir, tmp_path, cache_dir):
    home = tmp_path / "home"
    e = env(VIDCOLOR_HOME=str(home))
    run = tmp_path / "run"
    data = [a for p in train_clips() for a in ("--data", p)]
    res = vidcolor(["train", "colorize_tiny", *data, "--out", str(run),
                    *small_sets(cache_dir, **{"train.steps": "6", "train.checkpoint_every": "3",
                                              "export.render_size": "64", "objective.rebalance": "0.5"})], env=e)
    assert res.returncode == 0, res.stderr
    res = vidcolor(["train", "export", str(run), "--name", "my_style"], env=e)
    assert res.returncode == 0, res.stderr
    config = json.loads((home / "weights/my_style/config.json").read_text())
    assert config["task"] == "colorize" and config["arch"] == "unet" and config["l_norm"] == [50.0, 50.0]
    assert config["kwargs"]["ngf"] == 4 and config["meta"]["step"] == 6 and config["meta"]["recipe"]["name"]
    assert config["meta"]["data"]["a"]["videos"] == 2
    style = (home / "styles/my_style.toml").read_text()
    assert 'weights = "my_style"' in style and 'temporal = 0.6' in style  # the colorizer stabilizes its chroma

    film = data_dir / "videos/intel_asl_eat.mkv"  # a user's film (47 frames, 640x480)
    out = tmp_path / "film.my_style.mp4"
    res = vidcolor(["run", str(film), "--style", "my_style", "-o", str(out)], env=e, timeout=600)
    assert res.returncode == 0, res.stderr
    with av.open(str(out)) as c:
        assert c.streams.video[0].frames == 47 and c.streams.video[0].width == 640

    res = vidcolor(["train", "eval", str(run), "--data", str(data_dir / "videos/decord_flipping_a_pancake.mkv"),
                    "--data", str(data_dir / "images/color_kodak24/kodim01.png"), "--frames", "6", "--size", "64",
                    "--json"], env=e)
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout)
    assert len(result["sources"]) == 2 and result["step"] == 6
    for key in ("psnr", "psnr_grey", "colorfulness", "colorfulness_ratio", "warping_error", "ciede2000"):
        assert result["mean"][key] == result["mean"][key], key  # not nan
    assert (run / "eval.json").is_file()


def test_export_refuses_builtin_names_and_missing_runs(tmp_path):
    res = vidcolor(["train", "export", str(tmp_path), "--name", "noir"], env=env(VIDCOLOR_HOME=str(tmp_path)))
    assert res.returncode == 2 and "built-in" in res.stderr
    res = vidcolor(["train", "export", str(tmp_path), "--name", "mine"], env=env(VIDCOLOR_HOME=str(tmp_path)))
    assert res.returncode == 2 and "no checkpoints" in res.stderr


def _fake_run(monkeypatch) -> None:
    """``load_run`` returning a tiny untrained colorizer of the colorize_tiny recipe (no training needed)."""
    from vidcolor.training import export
    from vidcolor.training.objectives import generator_kwargs
    from vidcolor.training.recipe import find_recipe, load_recipe

    from vidcolor.models.registry import build_model

    recipe = load_recipe(find_recipe("colorize_tiny"), {"model.kwargs": "{num_downs = 5, ngf = 4}"})
    net = build_model(recipe.model.arch, **generator_kwargs(recipe)).eval()
    monkeypatch.setattr(export, "load_run", lambda run_dir, step=None: (net, recipe, {"step": 3}))


def test_export_refuses_registry_names_and_replaces_only_with_force(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from vidcolor.cli import main

    home = tmp_path / "home"
    monkeypatch.setenv("VIDCOLOR_HOME", str(home))
    _fake_run(monkeypatch)

    def export(*args):
        return CliRunner().invoke(main, ["train", "export", str(tmp_path), *args])

    # a downloadable model's name would make this export show as the installed registry model;
    # the shipped colorizer's name would be shadowed by the package
    for name in ("style_monet", "colorize", "colorize-eccv16", "style-vangogh"):
        res = export("--name", name)
        assert res.exit_code == 2 and f"--name '{name}' is reserved" in res.output, res.output
        assert f"--name my_{name}" in res.output
    assert not home.exists()
    assert export("--name", "mine").exit_code == 0
    weights = home / "weights/mine/weights.safetensors"
    first = weights.read_bytes()
    res = export("--name", "mine")  # one's own earlier export is not replaced silently
    assert res.exit_code == 2 and "exists already" in res.output and "--force" in res.output
    assert weights.read_bytes() == first
    assert export("--name", "mine", "--force").exit_code == 0
