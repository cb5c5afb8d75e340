"""`vidcolor models list | info | pull | import` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from click.testing import CliRunner
from reference_layouts import cyclegan_resnet, make_state_dict

from vidcolor.cli import main


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_list_and_info_json(vidcolor_home: Path) -> None:
    res = invoke("models", "list", "--json")
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.output)}
    assert rows["colorize"]["status"] == "installed" and rows["colorize"]["source"] == "package"  # shipped
    assert rows["style_monet"]["status"] == "not downloaded" and rows["style_monet"]["params"] == 11_378_179
    res = invoke("models", "info", "colorize-eccv16", "--json")
    info = json.loads(res.output)
    assert info["entry"]["sha256_prefix"] == "9b330a0b" and info["entry"]["sha256"] is None
    assert invoke("models", "list").exit_code == 0  # rich table
    res = invoke("models", "info", "nope")
    assert res.exit_code == 2 and "unknown weights 'nope'" in res.output


def test_import_then_list(tmp_path: Path, vidcolor_home: Path) -> None:
    ckpt = tmp_path / "latest_net_G.pth"
    torch.save(make_state_dict(cyclegan_resnet(3, 3, 4, 2, "instance")), ckpt)
    res = invoke("models", "import", str(ckpt), "--arch", "resnet", "--name", "mine", "--task", "stylize")
    assert res.exit_code == 0, res.output
    assert "vidcolor run VIDEO --style mine" in res.output
    rows = {r["name"]: r for r in json.loads(invoke("models", "list", "--json").output)}
    assert rows["mine"]["source"] == "imported" and rows["mine"]["status"] == "installed"
    res = invoke("models", "import", str(ckpt), "--arch", "unet_256", "--name", "wrong")
    assert res.exit_code == 2 and "missing keys" in res.output


def test_pull_from_local_server(http_server, tmp_path: Path, vidcolor_home: Path, monkeypatch) -> None:
    from vidcolor.models import weights as W

    url, files = http_server
    buf = tmp_path / "style_test.pth"
    torch.save(make_state_dict(cyclegan_resnet(3, 3, 4, 2, "instance_old")), buf)
    files["/style_test.pth"] = buf.read_bytes()
    entry = W.WeightsEntry(name="style_test", arch="resnet", task="stylize",
                           kwargs={"input_nc": 3, "output_nc": 3, "ngf": 4, "norm": "instance", "n_blocks": 2},
                           url=f"{url}/style_test.pth", meta={"params": 0})
    monkeypatch.setitem(W.WEIGHTS, "style_test", entry)
    res = invoke("models", "pull", "style_test")
    assert res.exit_code == 0, res.output
    assert "no published sha256" in res.output  # trust on first use is said out loud
    folder = vidcolor_home / "weights" / "style_test"
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["meta"]["sha256_verified"] is False and len(cfg["meta"]["source_sha256"]) == 64
    assert not list((vidcolor_home / "weights" / "downloads").iterdir())  # raw file removed
    res = invoke("models", "pull", "style_test")
    assert res.exit_code == 2 and "--force" in res.output
    # a wrong published digest: error, nothing new in the cache
    monkeypatch.setitem(W.WEIGHTS, "style_bad", W.WeightsEntry(
        name="style_bad", arch="resnet", task="stylize", kwargs=entry.kwargs, url=entry.url, sha256="0" * 64))
    res = invoke("models", "pull", "style_bad")
    assert res.exit_code == 2 and "sha256 mismatch" in res.output
    assert not (vidcolor_home / "weights" / "style_bad").exists()
    assert not list((vidcolor_home / "weights" / "downloads").iterdir())


def test_pull_shipped_weights_is_an_error(vidcolor_home: Path) -> None:
    res = invoke("models", "pull", "colorize")
    assert res.exit_code == 2 and "ship inside the vidcolor package" in res.output
