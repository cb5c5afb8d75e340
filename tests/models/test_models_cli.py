"""`vidcolor models list | info | pull | import` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
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
    assert info["checksum"]["kind"] == "pending"
    assert invoke("models", "list").exit_code == 0  # rich table
    res = invoke("models", "info", "nope")
    assert res.exit_code == 2 and "unknown weights 'nope'" in res.output


def test_info_says_how_each_model_is_checked(vidcolor_home: Path) -> None:
    from vidcolor.models.weights import WEIGHTS

    out = invoke("models", "info", "colorize").output
    assert f"sha256 pinned: {WEIGHTS['colorize'].sha256}" in out
    out = invoke("models", "info", "style_monet").output
    assert "not downloaded yet: checksum will be recorded on first download (not pinned)" in out
    out = invoke("models", "info", "colorize-eccv16").output
    assert "checksum will be recorded on first download (not pinned)" in out and "prefix 9b330a0b" in out
    rows = {r["name"]: r for r in json.loads(invoke("models", "list", "--json").output)}
    assert rows["colorize"]["checksum"] == "pinned" and rows["style_monet"]["checksum"] == "pending"


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
    out = invoke("models", "info", "mine").output
    assert "weights.safetensors sha256 recorded when written:" in out and "imported from a file with sha256" in out


def test_import_refuses_reserved_names_and_needs_force_to_replace(tmp_path: Path, vidcolor_home: Path) -> None:
    ckpt = tmp_path / "latest_net_G.pth"
    torch.save(make_state_dict(cyclegan_resnet(3, 3, 4, 2, "instance")), ckpt)
    for name in ("colorize", "style_monet", "noir"):
        res = invoke("models", "import", str(ckpt), "--arch", "resnet_9blocks", "--name", name, "--force")
        assert res.exit_code == 2, res.output
        assert res.output.startswith(f"vidcolor: error: --name '{name}' is reserved: ")
        assert res.output.count("\n") == 1 and f"--name my_{name}" in res.output
    assert not (vidcolor_home / "weights").exists() and not (vidcolor_home / "styles").exists()
    rows = {r["name"]: r for r in json.loads(invoke("models", "list", "--json").output)}
    assert rows["style_monet"]["status"] == "not downloaded"
    # a registry name taken by a hand import (older versions allowed it) is not shown as the model
    from vidcolor.models.importers import _convert_into

    _convert_into(ckpt, name="style_monet", arch="resnet", task="stylize", kwargs=None, l_norm=None, ab_scale=None,
                  meta=None, style=False)
    rows = {r["name"]: r for r in json.loads(invoke("models", "list", "--json").output)}
    assert rows["style_monet"]["status"] == "imported, not pulled"
    assert invoke("models", "import", str(ckpt), "--name", "mine").exit_code == 0
    res = invoke("models", "import", str(ckpt), "--name", "mine")
    assert res.exit_code == 2 and "exists already" in res.output and "--force" in res.output
    assert invoke("models", "import", str(ckpt), "--name", "mine", "--force").exit_code == 0


def test_failed_pull_prints_an_import_command_that_works(http_server, tmp_path: Path, vidcolor_home: Path,
                                                         monkeypatch) -> None:
    import dataclasses
    import shlex

    from vidcolor.models import weights as W
    from vidcolor.stages import StageContext
    from vidcolor.styles import get_style

    url, _ = http_server  # serves nothing: every download is a 404, as offline
    entry = dataclasses.replace(W.WEIGHTS["style_monet"], url=f"{url}/style_monet.pth")
    monkeypatch.setitem(W.WEIGHTS, "style_monet", entry)
    res = invoke("models", "pull", "style_monet")
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    prefix = (f"vidcolor: error: cannot download style_monet from {url}/style_monet.pth: HTTP 404 Not Found. "
              "If you have the file, import it: ")
    assert res.output.startswith(prefix), res.output
    command, then = res.output[len(prefix):].strip().split(" (then: ")
    assert command == ("vidcolor models import style_monet.pth --arch resnet_9blocks --task stylize "
                       "--name my_style_monet")
    assert then == "vidcolor run VIDEO --style style-monet --weights my_style_monet)"
    # the published file's layout (resnet_9blocks, pre-0.4 instance norm buffers), small ngf
    monkeypatch.chdir(tmp_path)
    torch.save(make_state_dict(cyclegan_resnet(3, 3, 4, 9, "instance_old")), tmp_path / "style_monet.pth")
    res = invoke(*shlex.split(command)[1:])
    assert res.exit_code == 0, res.output
    stages = get_style("style-monet").build(StageContext(overrides={"weights": "my_style_monet", "render_size": 32}))
    assert stages[0].describe()["weights"] == "my_style_monet"


@pytest.mark.parametrize("name", ["colorize-eccv16", "colorize-siggraph17", "style_monet", "style_vangogh",
                                  "style_cezanne", "style_ukiyoe"])
def test_import_command_matches_each_downloadable_model(name: str) -> None:
    import shlex

    from vidcolor.models.convert import parse_arch
    from vidcolor.models.importers import import_command
    from vidcolor.models.weights import WEIGHTS, reserved_name

    entry = WEIGHTS[name]
    args = shlex.split(import_command(entry))
    assert args[:3] == ["vidcolor", "models", "import"] and args[3] == entry.url.rsplit("/", 1)[1]
    opts = dict(zip(args[4::2], args[5::2]))
    arch, fixed = parse_arch(opts["--arch"])
    assert arch == entry.arch and fixed.items() <= entry.kwargs.items()
    assert opts["--task"] == entry.task and reserved_name(opts["--name"]) is None


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
    out = invoke("models", "info", "style_test").output
    assert f"sha256 recorded on first download: {cfg['meta']['source_sha256']}" in out
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
