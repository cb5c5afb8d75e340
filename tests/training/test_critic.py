"""The realism critic: kind "critic" trains a PatchGAN alone (training/critic.py) and
vidcolor.critic.load_critic scores frames with it; held-out frames are the eval split's Kodak photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.training.conftest import train_clips
from vidcolor.critic import load_critic
from vidcolor.errors import InputError
from vidcolor.training import load_recipe, train
from vidcolor.training.critic import CORRUPTIONS, corrupt, gaussian_blur
from vidcolor.training.recipe import find_recipe


@pytest.fixture(scope="module")
def critic_run(tmp_path_factory, data_dir):
    run = tmp_path_factory.mktemp("critic") / "run"
    recipe = load_recipe(find_recipe("critic_tiny"), {"data.paths": str(train_clips()).replace("'", '"'),
                                                      "data.cache_dir": f'"{run.parent / "cache"}"'})
    report = train(recipe, run, progress=False)
    assert report.steps == 300 and (run / "samples").is_dir()
    return run


def held_out(data_dir, size: int) -> torch.Tensor:
    """Eight eval-split Kodak photos (never trained on), short side ``size``, centre square."""
    from vidcolor.training.decoding import read_image, resize_short

    paths = sorted((data_dir / "images/color_kodak24").glob("*.png"))[:8]
    out = []
    for p in paths:
        img = resize_short(read_image(str(p)), size)
        y, x = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
        out.append(torch.from_numpy(np.ascontiguousarray(img[y:y + size, x:x + size])).permute(2, 0, 1).float() / 255)
    return torch.stack(out)


def quantise(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(0, 1).mul(255).round().div(255)


def test_critic_ranks_real_frames_above_blurred_copies(critic_run, data_dir):
    critic = load_critic(critic_run)
    assert critic.kind == "critic" and critic.step == 300 and critic.gan_mode == "vanilla"
    frames = held_out(data_dir, critic.size)
    real = critic.score(frames)
    blurred = critic.score(quantise(gaussian_blur(frames, 1.5)))
    assert real.shape == (8,) and ((real > 0) & (real < 1)).all()  # mean patch probabilities
    assert real.mean() > blurred.mean() + 0.05, (real, blurred)
    # the score is per frame: the same frame scores the same alone or with others, and at full size
    # it is judged at the training scale
    assert torch.allclose(critic.score(frames[:1]), real[:1], atol=1e-5)
    big = torch.nn.functional.interpolate(frames[:2], scale_factor=3, mode="bicubic", align_corners=False)
    assert torch.allclose(critic.score(quantise(big)), real[:2], atol=0.05)


def test_critic_ranks_real_frames_above_noisy_copies(critic_run, data_dir):
    # sigma 15 levels, the middle of the training range (3-20): a tiny critic learns blur first and
    # noise alone on a sharp frame only later (at 150 steps it did not, at 300 it does)
    critic = load_critic(critic_run)
    frames = held_out(data_dir, critic.size)
    noisy = quantise(frames + 0.06 * torch.randn(frames.shape, generator=torch.Generator().manual_seed(0)))
    assert critic.score(frames).mean() > critic.score(noisy).mean() + 0.02


def test_corruptions_are_seeded_and_damage_the_frame():
    frames = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    frames = torch.nn.functional.interpolate(frames, size=(64, 64), mode="bilinear", align_corners=False)
    frames = frames.expand(24, -1, -1, -1)
    a, kinds = corrupt(frames, np.random.default_rng([0, 0, 7, 0]))
    b, _ = corrupt(frames, np.random.default_rng([0, 0, 7, 0]))
    c, _ = corrupt(frames, np.random.default_rng([0, 0, 8, 0]))
    assert torch.equal(a, b) and not torch.equal(a, c)  # a function of (seed, step, rank)
    assert {k.split("+")[0] for k in kinds} == set(CORRUPTIONS)
    assert torch.equal(a, a.mul(255).round().div(255))  # 8-bit levels, as the real frames
    assert ((a - frames).abs().flatten(1).mean(1) > 1e-3).all()


def test_load_critic_errors_are_one_line(tmp_path, data_dir):
    with pytest.raises(InputError, match="no checkpoints") as err:
        load_critic(tmp_path)
    assert "\n" not in str(err.value)
    run = tmp_path / "pix2pix"
    recipe = load_recipe(find_recipe("colorize_tiny"), {
        "data.paths": str(train_clips()[:1]).replace("'", '"'), "model.kwargs": "{num_downs = 5, ngf = 4}",
        "discriminator.ndf": "4", "data.crop": "32", "data.load_size": "40", "data.max_frames": "8",
        "train.steps": "1", "train.batch_size": "1", "data.cache_dir": f'"{tmp_path / "cache"}"'})
    train(recipe, run, progress=False)
    with pytest.raises(InputError, match="conditional") as err:
        load_critic(run)
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="step 5"):
        load_critic(run, step=5)


def test_a_critic_run_is_not_exported_as_a_style(critic_run):
    """A critic has no generator: export and run refuse it in one line, naming what it is for."""
    from vidcolor.training.export import load_run

    with pytest.raises(InputError, match="realism critic") as err:
        load_run(critic_run)
    assert "\n" not in str(err.value) and "vidcolor eval --critic" in str(err.value)
