"""Importing pytorch-CycleGAN-and-pix2pix checkpoints; refusing pickles that would run code."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from reference_layouts import cyclegan_resnet, cyclegan_unet, make_state_dict
from vidcolor.errors import WeightsError
from vidcolor.models.convert import convert_checkpoint, detect_arch
from vidcolor.models.importers import import_checkpoint
from vidcolor.models.pretrained import load_pretrained

# netG name -> (layout builder, kwargs our importer must detect); tiny ngf, real key names and shapes.
CASES = {
    "resnet_9blocks": (lambda: cyclegan_resnet(3, 3, 4, 9, "instance_old"),
                       {"input_nc": 3, "output_nc": 3, "ngf": 4, "norm": "instance", "n_blocks": 9}),
    "resnet_6blocks": (lambda: cyclegan_resnet(3, 3, 4, 6, "batch"),
                       {"input_nc": 3, "output_nc": 3, "ngf": 4, "norm": "batch", "n_blocks": 6}),
    "unet_256": (lambda: cyclegan_unet(3, 3, 8, 4, "batch"),
                 {"input_nc": 3, "output_nc": 3, "num_downs": 8, "ngf": 4, "norm": "batch"}),
    "unet_128": (lambda: cyclegan_unet(1, 2, 7, 4, "instance"),
                 {"input_nc": 1, "output_nc": 2, "num_downs": 7, "ngf": 4, "norm": "instance"}),
}


def write_checkpoint(path: Path, layout: dict, seed: int = 0) -> Path:
    state = make_state_dict(layout, seed=seed)
    torch.save(state, path)
    return path


@pytest.mark.parametrize("netg", sorted(CASES))
def test_upstream_generators_import_and_run(netg: str, tmp_path: Path, vidcolor_home: Path) -> None:
    make_layout, expected = CASES[netg]
    ckpt = write_checkpoint(tmp_path / "latest_net_G.pth", make_layout())
    arch = "unet" if netg.startswith("unet") else "resnet"
    assert detect_arch(torch.load(ckpt, weights_only=True)) == (arch, expected)

    result = import_checkpoint(ckpt, name=f"my_{netg}")
    assert result.arch == arch and result.kwargs == expected
    assert result.task == ("colorize" if expected["input_nc"] == 1 else "stylize")
    model, cfg = load_pretrained(f"my_{netg}")
    assert cfg["meta"]["source_sha256"] == result.sha256
    # the imported weights are the checkpoint's (old instance-norm running stats dropped)
    source = torch.load(ckpt, weights_only=True)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, source[k])
    x = torch.rand(1, expected["input_nc"], 241, 321)
    from vidcolor.models.networks import PaddedGenerator

    y = PaddedGenerator(model)(x)
    assert y.shape == (1, expected["output_nc"], 241, 321) and torch.isfinite(y).all()
    # the explicit upstream name works too
    _, arch2, kwargs2 = convert_checkpoint(ckpt, arch=netg)
    assert (arch2, kwargs2) == (arch, expected)


def test_wrong_arch_names_missing_and_unexpected_keys(tmp_path: Path) -> None:
    ckpt = write_checkpoint(tmp_path / "g.pth", cyclegan_resnet(3, 3, 4, 9, "instance"))
    with pytest.raises(WeightsError) as err:
        convert_checkpoint(ckpt, arch="unet_256")
    msg = str(err.value)
    assert "\n" not in msg and "for arch 'unet_256'" in msg
    assert "missing keys (model.model.0.weight" in msg and "unexpected keys (model.1.weight" in msg
    assert "..." in msg  # a few named, the rest counted
    with pytest.raises(WeightsError, match=r"\d+ missing keys .*16 unexpected keys \(model\.16\.conv_block"):
        convert_checkpoint(ckpt, arch="resnet_6blocks")  # 9 blocks in the file, 6 asked


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_malicious_pickle_is_refused_not_executed(tmp_path: Path, vidcolor_home: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "latest_net_G.pth"
    with open(path, "wb") as f:
        pickle.dump({"model.1.weight": Evil()}, f)
    # torch.save-style zip container too: the payload sits in data.pkl
    zpath = tmp_path / "zip_net_G.pth"
    torch.save({"model.1.weight": Evil()}, zpath)
    assert not marker.exists()
    for p in (path, zpath):
        with pytest.raises(WeightsError, match="refused") as err:
            import_checkpoint(p, name="evil", arch="resnet_9blocks")
        assert "weights_only=True" in str(err.value)
    assert not marker.exists()
    assert not (vidcolor_home / "weights" / "evil").exists()
    # the file is a real exploit: an unrestricted unpickler does run it
    with open(path, "rb") as f:
        pickle.load(f)  # noqa: S301
    assert marker.exists()


def test_not_a_checkpoint(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00not a checkpoint")
    with pytest.raises(WeightsError):
        import_checkpoint(junk, name="junk")
    weird = tmp_path / "keys.pth"
    torch.save({"encoder.weight": torch.zeros(2, 2)}, weird)
    with pytest.raises(WeightsError, match="cannot tell the architecture.*--arch"):
        import_checkpoint(weird, name="weird")


def test_import_writes_a_style_that_builds(tmp_path: Path, vidcolor_home: Path) -> None:
    from vidcolor.stages import Chunk, StageContext
    from vidcolor.styles import get_style

    ckpt = write_checkpoint(tmp_path / "latest_net_G.pth", cyclegan_resnet(3, 3, 4, 2, "instance"))
    result = import_checkpoint(ckpt, name="my_look")
    assert result.style_path == vidcolor_home / "styles" / "my_look.toml"
    stages = get_style("my_look").build(StageContext(overrides={"render_size": 32}))
    assert [s.name for s in stages] == ["stylize", "stabilize"]  # model styles are stabilized
    out = stages[0].process(Chunk(torch.rand(2, 3, 40, 60), 0))
    assert out.frames.shape == (2, 3, 40, 60)
    with pytest.raises(WeightsError, match="exists already.*--force"):
        import_checkpoint(ckpt, name="my_look")
    import_checkpoint(ckpt, name="my_look", overwrite=True)
    # a style the user wrote by hand is not replaced silently either
    own = vidcolor_home / "styles" / "hand_made.toml"
    own.write_text('[[stages]]\ntype = "grade"\n')
    with pytest.raises(WeightsError, match=r"exists already \(.*hand_made.toml\); pass --force"):
        import_checkpoint(ckpt, name="hand_made")
    assert own.read_text() == '[[stages]]\ntype = "grade"\n'
    assert not (vidcolor_home / "weights" / "hand_made").exists()
    with pytest.raises(WeightsError, match="needs a 1->2 channel generator"):
        import_checkpoint(ckpt, name="other", task="colorize")
    with pytest.raises(WeightsError, match="bad weights name"):
        import_checkpoint(ckpt, name="../escape")


@pytest.mark.parametrize("name", ["colorize", "style_monet", "colorize-siggraph17", "style-monet", "noir", "Colorize"])
def test_reserved_names_are_refused(name: str, tmp_path: Path, vidcolor_home: Path) -> None:
    """A registry or built-in style name would be shadowed by the package (colorize) or pass a file
    nobody checked off as the registry's model (style_monet)."""
    ckpt = write_checkpoint(tmp_path / "latest_net_G.pth", cyclegan_resnet(3, 3, 4, 2, "instance"))
    with pytest.raises(WeightsError, match=rf"--name '{name}' is reserved: .*choose another name, e.g. --name my_{name}") \
            as err:
        import_checkpoint(ckpt, name=name, overwrite=True)
    assert "\n" not in str(err.value) and err.value.exit_code == 2
    assert not (vidcolor_home / "weights").exists() and not (vidcolor_home / "styles").exists()


def test_user_styles_follow_one_table_per_task(vidcolor_home: Path) -> None:
    """`models import` and `train export` write through write_user_style: the task decides the stabilizer."""
    from vidcolor.styles import get_style
    from vidcolor.user_styles import style_text, write_user_style

    text = style_text("colorize", "mine", 'a "quoted" one', render_size=64)
    assert text == ('description = "a \\"quoted\\" one"\n\n[[stages]]\ntype = "colorize"\nweights = "mine"\n'
                    "render_size = 64\ntemporal = 0.6\n")
    assert 'type = "stabilize"\nstrength = 0.3\nmode = "rgb"' in style_text("stylize", "mine", "", stabilize=0.3)
    assert "stabilize" not in style_text("stylize", "mine", "", stabilize=0) and "temporal" not in style_text(
        "colorize", "mine", "", stabilize=0)
    path = write_user_style("mine", task="stylize", description="x")
    assert path == vidcolor_home / "styles" / "mine.toml" and not list(path.parent.glob("*.part"))
    assert [st["type"] for st in get_style("mine").stages] == ["stylize", "stabilize"]
