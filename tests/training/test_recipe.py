"""Recipes: TOML -> frozen dataclasses, dotted overrides, one-line errors."""

from __future__ import annotations

import dataclasses

import pytest

from tests.conftest import REPO
from tests.training.conftest import vidcolor
from vidcolor.errors import InputError
from vidcolor.training.recipe import find_recipe, load_recipe, parse_value

RECIPES = sorted(p.stem for p in (REPO / "configs/train").glob("*.toml"))  # the shipped lineage and its candidates too


@pytest.mark.parametrize("name", RECIPES)
def test_builtin_recipes_load(name):
    path = find_recipe(name)
    # A painting recipe is a template: `vidcolor train style --style-image` names the painting.
    needs_painting = 'kind = "style"' in path.read_text()
    r = load_recipe(path, {"objective.style_image": '"painting.jpg"'} if needs_painting else None)
    assert r.name == name
    assert "eval" in r.data.exclude_splits  # default recipes never train on the eval split
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.train.steps = 1  # type: ignore[misc]


def test_overrides_are_dotted_and_typed():
    r = load_recipe(REPO / "configs/train/colorize_tiny.toml",
                    {"train.steps": "7", "train.lr": "1e-3", "model.kwargs.ngf": "4", "data.flip": "false",
                     "data.paths": '["a", "b"]', "objective.gan_mode": "lsgan"})
    assert (r.train.steps, r.train.lr, r.model.kwargs["ngf"], r.data.flip) == (7, 1e-3, 4, False)
    assert r.data.paths == ("a", "b") and r.objective.gan_mode == "lsgan"
    assert r.model.kwargs["num_downs"] == 5  # untouched keys of the same table stay
    assert parse_value("cyclegan") == "cyclegan" and parse_value("2") == 2


@pytest.mark.parametrize("override, words", [
    ({"train.stepz": "1"}, "unknown key train.stepz"),
    ({"train.steps": '"many"'}, "train.steps: expected an integer"),
    ({"objective.kind": "gan"}, "objective.kind must be one of"),
    ({"data.crop": "64", "data.load_size": "32"}, "data.load_size must be >= data.crop"),
    ({"objective.lambda_temporal": "1"}, "set data.clip_len >= 2"),
    ({"objective.lambda_ciede": "1", "objective.task": "stylize"}, "objective.lambda_ciede is a colour-difference"),
    ({"data.video_share": "1.5"}, "data.video_share must be in [0, 1]"),
    ({"bogus.x": "1"}, "unknown section 'bogus'"),
])
def test_bad_values_are_one_line_input_errors(override, words):
    with pytest.raises(InputError) as err:
        load_recipe(REPO / "configs/train/colorize_tiny.toml", override)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_cli_bad_recipe_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nsteps = 0\n")
    res = vidcolor(["train", str(bad), "--data", str(tmp_path), "--out", str(tmp_path / "run")])
    assert res.returncode == 2
    assert res.stderr.strip().count("\n") == 0 and "train.steps must be >= 1" in res.stderr
    res = vidcolor(["train", "configs/train/colorize_tiny.toml", "--data", str(tmp_path / "missing"),
                    "--out", str(tmp_path / "run")])
    assert res.returncode == 2 and "data not found" in res.stderr
