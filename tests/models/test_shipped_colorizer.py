"""The shipped colorizers: the default (``colorize``, ImageNet encoder + ab-bin classifier) and
``colorize-fast`` load from the installed package with no network and no cache, colour a real eval
frame without touching L*, and the default can be retrained on new footage."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from vidcolor.color import lab_to_rgb, rgb_to_lab, rgb_to_lightness
from vidcolor.metrics import colorfulness

REPO = Path(__file__).resolve().parents[2]
# Hasler & Süsstrunk: ~15 is "slightly colourful"; a grey frame scores ~0 (< 1 after 8-bit rounding).
COLORFULNESS_FLOOR = 8.0


def _eval_frame(shared_data: Path, width: int = 320) -> torch.Tensor:
    """The middle-ish frame of an eval clip as (1, 3, H, W) float RGB, made grey (L* kept, a*=b*=0)."""
    from vidcolor.evaluate import read_chunks

    src = shared_data / "videos" / "sam2_04_coffee.mp4"
    if not src.is_file():
        pytest.skip(f"{src} not found")
    frames = next(iter(read_chunks(src, 8)))
    x = torch.from_numpy(frames[-1].copy()).permute(2, 0, 1)[None].float() / 255.0
    h = round(x.shape[-2] * width / x.shape[-1] / 2) * 2
    x = torch.nn.functional.interpolate(x, size=(h, width), mode="area")
    L = rgb_to_lightness(x)
    return lab_to_rgb(torch.cat([L, torch.zeros_like(L), torch.zeros_like(L)], 1)).clamp(0, 1)


@pytest.mark.parametrize("name", ["colorize", "colorize-fast"])
def test_shipped_weights_come_from_the_package(vidcolor_home: Path, name: str, no_network) -> None:
    """VIDCOLOR_HOME is an empty temp folder (no cache, no download): the name resolves to the
    package folder, whose safetensors match the sha256 recorded in the registry."""
    import vidcolor
    from vidcolor.models.pretrained import load_pretrained, resolve_weights
    from vidcolor.models.weights import WEIGHTS

    entry = WEIGHTS[name]
    folder = resolve_weights(name)
    assert folder == Path(vidcolor.__file__).parent / "weights" / name
    assert not any(vidcolor_home.iterdir())
    assert entry.package and entry.url is None and entry.sha256
    assert hashlib.sha256((folder / "weights.safetensors").read_bytes()).hexdigest() == entry.sha256
    model, config = load_pretrained(name)
    assert config["arch"] == entry.arch and config["kwargs"] == entry.kwargs
    assert config["ab_scale"] == entry.ab_scale and config["l_norm"] == list(entry.l_norm)
    assert sum(p.numel() for p in model.parameters()) == entry.meta["params"]
    assert (folder / "weights.safetensors").stat().st_size < 20 * 2**20  # a few MB, fit to ship


@pytest.mark.parametrize("name", ["colorize", "colorize-fast"])
def test_shipped_colorizer_colours_a_real_eval_frame(vidcolor_home: Path, shared_data: Path, name: str) -> None:
    from vidcolor.stages.base import Chunk, StageContext
    from vidcolor.styles import get_style

    grey = _eval_frame(shared_data)
    stages = get_style(name).build(StageContext())
    assert stages[0].name == "colorize" and stages[0].weights == name
    assert [s.name for s in stages] == ["colorize"] and stages[0].stabilizer is not None  # chroma stabilized in-stage
    out = stages[0](Chunk(frames=grey.clone(), index=0, source=grey)).frames
    assert out.shape == grey.shape
    dL = (rgb_to_lab(out)[:, 0] - rgb_to_lab(grey)[:, 0]).abs()
    assert float(dL.max()) <= 0.5, f"L* changed by up to {float(dL.max()):.3f}"
    assert colorfulness(grey) < 1.0 < COLORFULNESS_FLOOR
    assert colorfulness(out) > COLORFULNESS_FLOOR


def test_retrain_from_shipped_weights_then_export_and_run(tmp_path: Path, vidcolor_home: Path,
                                                          shared_data: Path) -> None:
    """The model card's retraining recipe, shortened: a few steps from the shipped weights on a
    train-split clip, `train export`, then `vidcolor run --style NAME` end to end."""
    from vidcolor.training.export import export_run
    from vidcolor.training.recipe import load_recipe
    from vidcolor.training.trainer import train

    src = shared_data / "videos" / "intel_asl_eat.mkv"  # train split, 138 kB
    if not src.is_file():
        pytest.skip(f"{src} not found")
    recipe = load_recipe(REPO / "configs" / "train" / "colorize_effunet_stage2.toml", overrides={
        "model.init_from": "colorize", "train.steps": "3", "train.batch_size": "2", "train.decay_start": "2",
        "train.checkpoint_every": "3", "train.sample_every": "1000", "train.threads": "0",
        "data.crop": "64", "data.load_size": "64", "data.max_frames": "8"})
    recipe = recipe.replace(data={"paths": (str(src),), "cache_dir": str(tmp_path / "cache")})
    run_dir = tmp_path / "run"
    report = train(recipe, run_dir, progress=False)
    assert report.steps == 3 and Path(report.checkpoint).is_file()
    weights, style = export_run(run_dir, "my_footage")
    config = json.loads((weights / "config.json").read_text())
    assert config["arch"] == "effunet" and config["meta"]["recipe"]["model"]["init_from"] == "colorize"

    # The fine-tuned model starts from the shipped one: its generator differs only a little.
    from safetensors.torch import load_file

    from vidcolor.models.pretrained import resolve_weights

    shipped = load_file(str(resolve_weights("colorize") / "weights.safetensors"))
    tuned = load_file(str(weights / "weights.safetensors"))
    conv = [k for k in shipped if k.endswith("weight") and shipped[k].dim() == 4]
    rel = max(float((tuned[k] - shipped[k]).norm() / shipped[k].norm().clamp_min(1e-12)) for k in conv)
    assert 0 < rel < 0.5
    # the recipe fine-tunes the top of the encoder only: the stem and blocks 0-8 keep their weights
    frozen = [k for k in conv if k.startswith(("encoder._conv_stem", *(f"encoder._blocks.{i}." for i in range(9))))]
    assert frozen and all(torch.equal(tuned[k], shipped[k]) for k in frozen)
    assert any(not torch.equal(tuned[k], shipped[k]) for k in conv if k.startswith("encoder._blocks.15."))

    import imageio_ffmpeg

    from vidcolor.pipelines.run import run

    cut = tmp_path / "eat_short.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(src),
                    "-frames:v", "6", "-vf", "scale=160:-2,format=gray", "-pix_fmt", "yuv420p", str(cut)], check=True)
    out = tmp_path / "eat.my_footage.mp4"
    result = run(cut, out, "my_footage", overrides={"render_size": 64}, device="cpu")
    assert out.is_file() and result.frames == 6
    assert [s["stage"] for s in result.stages][:1] == ["colorize"]
    from vidcolor.evaluate import read_chunks

    frames = np.concatenate(list(read_chunks(out, 8)))
    assert frames.shape[0] == 6
