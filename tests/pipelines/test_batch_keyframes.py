"""Batch picks up ``NAME.keyframes/`` beside an input for colorize styles (issue #18)."""

from __future__ import annotations

import os
from pathlib import Path

import av
import cv2
import numpy as np

from vidcolor.pipelines.batch import keyframes_beside, run_batch
from vidcolor.pipelines.executor import LocalExecutor
from vidcolor.settings import make_settings
from tests.conftest import make_clip


def _first_frame(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return next(c.decode(video=0)).to_ndarray(format="rgb24")


def _mean_a(path: Path) -> float:
    """Mean CIE a* of the frames of a video (OpenCV Lab, 8-bit: 128 is neutral)."""
    with av.open(str(path)) as c:
        return float(np.mean([cv2.cvtColor(f.to_ndarray(format="rgb24"), cv2.COLOR_RGB2Lab)[..., 1].mean()
                              for f in c.decode(video=0)]))


def test_keyframes_folder_beside_an_input_is_used_and_fingerprinted(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    make_clip(src / "a.mp4", frames=12, audio=False)
    make_clip(src / "b.mp4", frames=12, audio=False)
    kf = src / "a.keyframes"
    kf.mkdir()
    grey = cv2.cvtColor(_first_frame(src / "a.mp4"), cv2.COLOR_RGB2GRAY)
    lab = np.stack([grey, np.full_like(grey, 128 + 60), np.full_like(grey, 128 + 20)], -1)  # strong red, same L
    cv2.imwrite(str(kf / "000000.png"), cv2.cvtColor(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB), cv2.COLOR_RGB2BGR))

    settings = make_settings("colorize", resumable=False)
    with_kf, print_a = keyframes_beside(src / "a.mp4", settings)
    assert with_kf.overrides["keyframes"] == str(kf.resolve()) and print_a.startswith("+keyframes:")
    assert keyframes_beside(src / "b.mp4", settings) == (settings, "")
    assert keyframes_beside(src / "a.mp4", make_settings("noir"))[1] == ""  # a style without a colorize stage

    report = run_batch(src, out, settings, executor=LocalExecutor(jobs=1))
    assert report.ok and report.counts["done"] == 2
    assert _mean_a(out / "a.mp4") > _mean_a(out / "b.mp4") + 10

    again = run_batch(src, out, settings, executor=LocalExecutor(jobs=1))
    assert again.counts["skipped"] == 2
    png = kf / "000000.png"
    os.utime(png, ns=(png.stat().st_atime_ns, png.stat().st_mtime_ns + 10**9))  # a repainted keyframe
    redo = run_batch(src, out, settings, executor=LocalExecutor(jobs=1))
    assert redo.counts == {**redo.counts, "done": 1, "skipped": 1}


def test_guided_runs_are_not_split_into_parallel_segments(tmp_path: Path) -> None:
    import pytest

    from vidcolor.errors import InputError
    from vidcolor.pipelines.split import plan_split_run

    clip = make_clip(tmp_path / "c.mp4", frames=6, audio=False)
    (tmp_path / "kf").mkdir()
    with pytest.raises(InputError, match="cannot be split"):
        plan_split_run(clip, tmp_path / "o.mp4", "colorize", keyframes=str(tmp_path / "kf"), jobs=2)
