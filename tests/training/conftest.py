"""Fixtures for the training tests: small real clips from ../shared/data (train split) and helpers
to run ``vidcolor train`` in a subprocess (SIGKILL, torchrun) or in-process (CliRunner)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, shared_data_dir

PY = sys.executable


def train_clips() -> list[str]:
    """Two short train-split clips (47 and 48 frames)."""
    v = shared_data_dir() / "videos"
    return [str(v / "intel_asl_eat.mkv"), str(v / "moviepy_sintel_2s.mp4")]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = shared_data_dir()
    if not (d / "videos").is_dir():
        pytest.skip(f"shared data not found at {d} (set VIDCOLOR_SHARED_DATA)")
    return d


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> str:
    """One decoded-frame cache for the whole session (what the trainer caches depends only on the
    file and the load size, so runs share it safely)."""
    return str(tmp_path_factory.mktemp("train-cache"))


def small_sets(cache: str, **extra: str) -> list[str]:
    """``--set`` arguments for a very small, fast colorize run."""
    values = {"model.kwargs": "{num_downs = 5, ngf = 4}", "discriminator.ndf": "4", "data.crop": "32",
              "data.load_size": "40", "data.max_frames": "24", "train.batch_size": "2", "train.sample_every": "1000",
              "data.cache_dir": f'"{cache}"', **extra}
    return [a for k, v in values.items() for a in ("--set", f"{k}={v}")]


def env(**extra: str) -> dict[str, str]:
    e = {**os.environ, "PYTHONUNBUFFERED": "1", **extra}
    e.pop("WORLD_SIZE", None)
    return e


def vidcolor(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(PY).parent / "vidcolor"), *args], cwd=REPO, capture_output=True, text=True,
                          env=kw.pop("env", env()), timeout=kw.pop("timeout", 300), **kw)
