"""The restoration task: (degraded, clean) pairs made on the fly and reproducible, the recipe rules,
the tiny recipe trains and exports, and the exported net runs as the restore_net stage, whose output
does not depend on chunking, resume or segments."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import decode_all, make_clip
from tests.training.conftest import env, train_clips, vidcolor
from vidcolor.errors import InputError
from vidcolor.training.recipe import find_recipe, load_recipe


def _dataset(cache_dir: str, seed: int = 0, **degrade):
    from vidcolor.training.media import scan
    from vidcolor.training.restoration import RestorationDataset

    overrides = {"train.seed": str(seed)}
    if degrade:
        overrides["data.degrade"] = "{" + ", ".join(f"{k} = {v}" for k, v in degrade.items()) + "}"
    recipe = load_recipe(find_recipe("restore_tiny"), overrides)
    found = scan(train_clips(), load_size=recipe.data.load_size, cache_dir=cache_dir, max_frames=8,
                 min_frames=recipe.data.clip_len)
    return RestorationDataset(found.sources, recipe.data, recipe.train.seed)


def test_pairs_are_the_clip_degraded_and_the_clip_and_reproducible(data_dir, cache_dir):
    from vidcolor.training.datasets import ClipDataset

    ds = _dataset(cache_dir)
    for k in (0, 5, 123):
        s = ds[k]
        assert s["a"].shape == s["b"].shape == (3, 3, 48, 48)
        # the clean side is the plain clip sample k (same source, start, crop, flip)
        assert torch.equal(s["b"], ClipDataset(ds.sources, ds.cfg, ds.seed)[k]["a"])
        # the same sample again, from a new dataset (a resumed run, a loader worker): bit-identical
        again = _dataset(cache_dir)[k]
        assert torch.equal(s["a"], again["a"]) and torch.equal(s["b"], again["b"])
        err = (s["a"] - s["b"]).abs().mean().item()
        assert 0.01 < err < 0.2  # grain 8/255, flicker +-10 %, specks, scratches
    # another run seed: other samples
    assert not torch.equal(_dataset(cache_dir, seed=1)[5]["a"], ds[5]["a"])
    # with every defect off the input is the clean clip: degradation is the only difference
    off = _dataset(cache_dir, flicker=0.0, grain=0.0, specks=0, scratches=0)[5]
    assert torch.equal(off["a"], off["b"])
    # a speck-only spec changes few pixels, in each frame separately
    specks = _dataset(cache_dir, flicker=0.0, grain=0.0, specks=30, scratches=0)[5]
    changed = (specks["a"] != specks["b"]).any(1)  # (T, H, W)
    assert 0 < changed.float().mean() < 0.2 and not torch.equal(changed[0], changed[1])


def test_restoration_objective_stacks_the_clip_and_targets_the_clean_middle_frame():
    from vidcolor.training.objectives import build_objective

    objective = build_objective(load_recipe(find_recipe("restore_tiny")), torch.device("cpu"))
    a, b = torch.rand(2, 3, 3, 24, 24), torch.rand(2, 3, 3, 24, 24)
    x, y, _ = objective.prepare({"a": a, "b": b})
    assert x.shape == (2, 1, 9, 24, 24) and torch.equal(x[:, 0, 3:6], a[:, 1]) and torch.equal(y[:, 0], b[:, 1])
    # a fresh network returns the degraded middle frame: its L1 is the baseline's
    logs = objective.step({"a": a, "b": b}, {"G": torch.optim.SGD(objective.parameters("G"), lr=0.0)})
    assert logs["L1"] == pytest.approx(logs["L1_base"], rel=1e-6)
    assert logs["L1_base"] == pytest.approx((a[:, 1] - b[:, 1]).abs().mean().item(), rel=1e-5)


def test_restoration_recipe_rules():
    path = find_recipe("restore_tiny")
    for key, value, match in [("objective.lambda_gan", "1.0", "lambda_gan"),
                              ("data.clip_len", "2", "must be odd"),
                              ("model.kwargs", "{frames = 5}", "model.kwargs.frames"),
                              ("model.arch", "superres", "model.arch = 'restorenet'"),
                              ("data.degrade", "{specks = 2.5}", "specks must be an integer"),
                              ("data.degrade", "{dust = 3}", "unknown key 'dust'"),
                              ("data.degrade", "{flicker = 1.5}", "flicker must be in")]:
        with pytest.raises(InputError, match=match):
            load_recipe(path, {key: value})
    with pytest.raises(InputError, match="data.degrade is for objective.task = 'restoration'"):
        load_recipe(find_recipe("upscale_tiny"), {"data.degrade": "{specks = 3}"})


@pytest.fixture(scope="module")
def exported(data_dir, tmp_path_factory, cache_dir) -> tuple[Path, Path]:
    """The tiny recipe trained on two train clips and exported as ``my_restore``: (run, home)."""
    tmp = tmp_path_factory.mktemp("restore-run")
    home, run = tmp / "home", tmp / "run"
    data = [a for p in train_clips() for a in ("--data", p)]
    res = vidcolor(["train", "restore_tiny", *data, "--out", str(run), "--set", f'data.cache_dir="{cache_dir}"'],
                   env=env(VIDCOLOR_HOME=str(home)))
    assert res.returncode == 0, res.stderr
    res = vidcolor(["train", "export", str(run), "--name", "my_restore"], env=env(VIDCOLOR_HOME=str(home)))
    assert res.returncode == 0, res.stderr
    return run, home


def test_tiny_recipe_trains_and_exports(exported):
    from vidcolor.training.trainer import read_log

    run, home = exported
    rows = read_log(run)
    assert len(rows) == 60
    assert rows[0]["L1"] == pytest.approx(rows[0]["L1_base"], rel=1e-5)  # step 1: the degraded frame exactly
    assert sum(r["L1"] / r["L1_base"] for r in rows[-10:]) / 10 < 0.99  # closer to the clean frame by the end
    assert (run / "samples/step_0000060.png").is_file()
    config = json.loads((home / "weights/my_restore/config.json").read_text())
    assert config["task"] == "restoration" and config["arch"] == "restorenet" and config["kwargs"]["frames"] == 3
    style = (home / "styles/my_restore.toml").read_text()
    assert 'type = "restore_net"' in style and 'weights = "my_restore"' in style


def _frames(n: int = 10) -> torch.Tensor:
    """(n, 3, 90, 160) float32: degraded frames of a real train clip."""
    import cv2

    from vidcolor.degrade import degrade
    from vidcolor.training.decoding import decode_frames

    clean = np.stack([cv2.resize(f, (160, 90), interpolation=cv2.INTER_AREA)
                      for f in decode_frames(train_clips()[1], "pyav", list(range(n)))])
    bad, _ = degrade(clean, seed=4)
    return torch.from_numpy(bad).permute(0, 3, 1, 2).float() / 255


def _through(stage, x: torch.Tensor, chunk: int, start: int = 0) -> torch.Tensor:
    from vidcolor.stages.base import Chunk

    outs = []
    for i in range(start, len(x), chunk):
        c = x[i:i + chunk].clone()
        ahead = x[i + len(c):i + len(c) + stage.lookahead].clone()
        outs.append(stage.process(Chunk(frames=c, index=i, source=c, ahead=ahead if len(ahead) else None)).frames)
    return torch.cat(outs)


def test_stage_uses_the_neighbours_and_chunking_does_not_matter(exported):
    from vidcolor.stages.restore_net import RestoreNetStage

    folder = str(exported[1] / "weights/my_restore")
    stage = RestoreNetStage(folder)
    assert stage.lookahead == 1
    x = _frames()
    whole = _through(stage, x, chunk=len(x))
    assert not torch.equal(whole, x)  # the trained net changes the frames
    net = stage.model
    with torch.no_grad():
        for t, window in [(4, [3, 4, 5]), (0, [0, 0, 1]), (9, [8, 9, 9])]:  # the film's ends: nearest frame
            want = net(x[window].flatten(0, 1)[None]).clamp(0, 1)[0]
            assert torch.allclose(whole[t], want, atol=1e-5), t
    for size in (1, 3, 4):
        assert torch.equal(_through(RestoreNetStage(folder), x, chunk=size), whole), size
    first = RestoreNetStage(folder)
    _through(first, x[:6], chunk=3)  # frames 0-5 (its last chunk's look-ahead cut short, as at a film's end)
    again = RestoreNetStage(folder)
    again.load_state_dict({k: v.clone() for k, v in first.state_dict().items()})
    assert torch.equal(_through(again, x, chunk=4, start=6), whole[6:])


def test_cli_runs_the_exported_style_and_segments_match(exported, tmp_path):
    from vidcolor.pipelines.run import run
    from vidcolor.pipelines.segments import run_resumable
    from vidcolor.pipelines.split import run_split

    _, home = exported
    src = make_clip(tmp_path / "clip.mp4", frames=20, width=96, height=64)
    res = vidcolor(["run", str(src), "--style", "my_restore", "-o", str(tmp_path / "cli.mkv"), "--codec", "ffv1"],
                   env=env(VIDCOLOR_HOME=str(home)))
    assert res.returncode == 0, res.stderr
    want = decode_all(tmp_path / "cli.mkv")
    assert len(want) == 20 and not np.array_equal(want, decode_all(src))
    style = tmp_path / "mine.toml"  # the exported style, pointing at the weights folder
    style.write_text(f'[[stages]]\ntype = "restore_net"\nweights = "{home / "weights/my_restore"}"\n')
    run(src, tmp_path / "c3.mkv", str(style), codec="ffv1", resumable=False, chunk_size=3)
    run_resumable(src, tmp_path / "res.mkv", str(style), codec="ffv1", segment_frames=8)
    run_split(src, tmp_path / "par.mkv", str(style), codec="ffv1", segment_frames=8)
    for name in ("c3", "res", "par"):
        assert np.array_equal(decode_all(tmp_path / f"{name}.mkv"), want), name
    # a table without weights, or after another stage: one line, no traceback
    bad = tmp_path / "bad.toml"
    for text, match in [('[[stages]]\ntype = "restore_net"\n', "weights is required"),
                        ('[[stages]]\ntype = "grade"\npreset = "sepia"\n[[stages]]\ntype = "restore_net"\n'
                         f'weights = "{home / "weights/my_restore"}"\n', "put it first")]:
        bad.write_text(text)
        res = vidcolor(["run", str(src), "--style", str(bad), "-o", str(tmp_path / "x.mkv")],
                       env=env(VIDCOLOR_HOME=str(home)))
        assert res.returncode != 0 and match in res.stderr and "Traceback" not in res.stderr, res.stderr
