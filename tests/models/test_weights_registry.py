"""Weights registry entries, our folder format (save/load) and how names resolve."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from vidcolor.errors import InputError, WeightsError
from vidcolor.models.pretrained import cache_dir, load_pretrained, read_config, resolve_weights, save_pretrained
from vidcolor.models.registry import MODELS, build_model, count_params
from vidcolor.models.weights import WEIGHTS


def test_entries_are_consistent() -> None:
    assert {"colorize", "colorize-eccv16", "colorize-siggraph17", "style_monet", "style_vangogh", "style_cezanne",
            "style_ukiyoe"} <= set(WEIGHTS)
    for name, e in WEIGHTS.items():
        assert e.name == name and e.arch in MODELS
        assert e.meta["params"] == count_params(build_model(e.arch, **e.kwargs)), name
        assert {"recipe", "metrics", "licence"} <= set(e.meta), name
        # we never invent digests: full ones are 64 hex digits, and none is published for these files
        assert e.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", e.sha256)
    assert WEIGHTS["style_monet"].url == "https://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/style_monet.pth"
    assert all(e.url.startswith("https://") for e in WEIGHTS.values() if e.url)  # never fetched over plain http
    # torch.hub naming: the 8 hex digits in the file name are the sha256 prefix
    for name in ("colorize-eccv16", "colorize-siggraph17"):
        e = WEIGHTS[name]
        assert e.sha256_prefix and e.url and e.url.endswith(f"-{e.sha256_prefix}.pth")
    assert WEIGHTS["colorize"].package and WEIGHTS["colorize"].url is None


def test_save_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("resnet", ngf=4, n_blocks=2)
    folder = save_pretrained(model, tmp_path / "look", {"arch": "resnet", "kwargs": {"ngf": 4, "n_blocks": 2},
                                                        "task": "stylize", "meta": {"note": "test"}})
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "weights.safetensors"]
    assert not list(tmp_path.glob("*.part"))
    config = json.loads((folder / "config.json").read_text())
    assert config["format"] == "vidcolor-weights/1" and config["meta"]["params"] == count_params(model)
    loaded, cfg = load_pretrained(folder)
    assert not loaded.training and cfg["arch"] == "resnet" and cfg["meta"]["note"] == "test"
    x = torch.rand(1, 3, 32, 48)
    torch.testing.assert_close(loaded(x), model.eval()(x))
    # saving again replaces the folder atomically
    save_pretrained(model, folder, {"arch": "resnet", "kwargs": {"ngf": 4, "n_blocks": 2}, "task": "stylize"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["look"]


def test_save_validates_config(tmp_path: Path) -> None:
    model = build_model("unet", ngf=4, num_downs=5)
    with pytest.raises(WeightsError, match=r"l_norm = \[center, scale\]"):
        save_pretrained(model, tmp_path / "x", {"arch": "unet", "kwargs": {"ngf": 4, "num_downs": 5},
                                                "task": "colorize"})
    with pytest.raises(WeightsError, match="task must be one of"):
        save_pretrained(model, tmp_path / "x", {"arch": "unet", "kwargs": {}, "task": "paint"})
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.part").exists()


def test_names_resolve_through_cache(vidcolor_home: Path, tiny_colorizer: Path) -> None:
    import shutil

    shutil.copytree(tiny_colorizer, cache_dir() / "mine")
    assert resolve_weights("mine") == cache_dir() / "mine"
    model, cfg = load_pretrained("mine")
    assert cfg["task"] == "colorize" and cfg["l_norm"] == [50, 50]
    assert resolve_weights(str(tiny_colorizer)) == tiny_colorizer


@pytest.fixture
def no_shipped_weights(monkeypatch, tmp_path: Path) -> None:
    """An installation whose package folder lost its shipped weights (a broken or slimmed install)."""
    import vidcolor.models.pretrained as pretrained

    monkeypatch.setattr(pretrained, "package_dir", lambda: tmp_path / "empty-package-weights")


def test_shipped_default_colorizer_resolves_without_network_or_cache(vidcolor_home: Path) -> None:
    folder = resolve_weights("colorize")
    assert folder.parent.name == "weights" and (folder / "weights.safetensors").is_file()


def test_missing_default_colorizer_says_how_to_get_it(vidcolor_home: Path, no_shipped_weights) -> None:
    with pytest.raises(WeightsError) as err:
        resolve_weights("colorize")
    msg = str(err.value)
    assert "\n" not in msg and "'colorize'" in msg
    assert "vidcolor models pull colorize-eccv16" in msg and "vidcolor models import" in msg
    assert err.value.exit_code == 2


def test_colorize_style_fails_in_one_line_without_fallback(vidcolor_home: Path, no_shipped_weights) -> None:
    from vidcolor.stages.base import StageContext
    from vidcolor.styles import get_style

    with pytest.raises(WeightsError, match="weights 'colorize' are not installed"):
        get_style("colorize").build(StageContext())


def test_not_downloaded_and_unknown_names(vidcolor_home: Path, tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"run `vidcolor models pull style_monet`"):
        resolve_weights("style_monet")
    with pytest.raises(WeightsError, match="unknown weights 'nope'"):
        resolve_weights("nope")
    pth = tmp_path / "latest_net_G.pth"
    torch.save({"w": torch.zeros(1)}, pth)
    with pytest.raises(WeightsError, match="foreign checkpoint; convert it first"):
        resolve_weights(str(pth))


def test_corrupt_folder_is_a_clear_error(tmp_path: Path, tiny_colorizer: Path) -> None:
    cfg = json.loads((tiny_colorizer / "config.json").read_text())
    (tiny_colorizer / "config.json").write_text(json.dumps({**cfg, "arch": "vgg"}))
    with pytest.raises(WeightsError, match="unknown arch 'vgg'"):
        read_config(tiny_colorizer)
    (tiny_colorizer / "config.json").write_text(json.dumps({**cfg, "kwargs": {"ngf": 8, "num_downs": 6}}))
    with pytest.raises(WeightsError, match=r"shape mismatches"):
        load_pretrained(tiny_colorizer)
    # a folder written without a recorded digest: the garbage file is caught by the reader
    (tiny_colorizer / "config.json").write_text(json.dumps({**cfg, "meta": {}}))
    (tiny_colorizer / "weights.safetensors").write_bytes(b"garbage")
    with pytest.raises(WeightsError, match="cannot read"):
        load_pretrained(tiny_colorizer)
    assert issubclass(WeightsError, InputError)


def test_load_checks_the_recorded_digest_and_reports_it(tmp_path: Path, tiny_colorizer: Path) -> None:
    import hashlib

    digest = hashlib.sha256((tiny_colorizer / "weights.safetensors").read_bytes()).hexdigest()
    assert read_config(tiny_colorizer)["meta"]["weights_sha256"] == digest  # written by save_pretrained
    _, cfg = load_pretrained(tiny_colorizer)
    assert cfg["meta"]["weights_sha256"] == digest
    # other valid weights of the same shape dropped into the folder: refused, not silently used
    torch.manual_seed(1)
    other = save_pretrained(build_model("unet", ngf=4, num_downs=6), tmp_path / "other",
                            {"arch": "unet", "kwargs": {"ngf": 4, "num_downs": 6}, "task": "colorize",
                             "l_norm": [50, 50], "ab_scale": 110})
    (tiny_colorizer / "weights.safetensors").write_bytes((other / "weights.safetensors").read_bytes())
    with pytest.raises(WeightsError, match=f"differs from the one recorded in .*config.json \\({digest}\\)") as err:
        load_pretrained(tiny_colorizer)
    assert "\n" not in str(err.value) and err.value.exit_code == 2


def test_shipped_weights_are_checked_against_the_pinned_digest(monkeypatch, vidcolor_home: Path) -> None:
    import dataclasses

    from vidcolor.models import weights as W

    _, cfg = load_pretrained("colorize")
    assert cfg["meta"]["weights_sha256"] == WEIGHTS["colorize"].sha256
    monkeypatch.setitem(W.WEIGHTS, "colorize", dataclasses.replace(WEIGHTS["colorize"], sha256="0" * 64))
    with pytest.raises(WeightsError, match="differs from the one pinned in vidcolor's weights registry"):
        load_pretrained("colorize")


def test_stages_describe_the_digest_of_the_weights_loaded(tmp_path: Path) -> None:
    import hashlib

    from vidcolor.stages.colorize import Colorize
    from vidcolor.stages.stylize import Stylize

    assert Colorize(weights="colorize", render_size=32).describe()["weights_sha256"] == WEIGHTS["colorize"].sha256
    folder = save_pretrained(build_model("resnet", ngf=4, n_blocks=2), tmp_path / "look",
                             {"arch": "resnet", "kwargs": {"ngf": 4, "n_blocks": 2}, "task": "stylize"})
    digest = hashlib.sha256((folder / "weights.safetensors").read_bytes()).hexdigest()
    assert Stylize(weights=str(folder), render_size=32).describe()["weights_sha256"] == digest


def test_reserved_names() -> None:
    from vidcolor.models.weights import reserved_name

    for name in ("colorize", "Colorize", "style_monet", "colorize-eccv16", "style-monet", "noir", "downloads"):
        assert reserved_name(name), name
    assert "shipped" in reserved_name("colorize") and "models pull style_monet" in reserved_name("style_monet")
    assert reserved_name("my_style_monet") is None and reserved_name("mine") is None
