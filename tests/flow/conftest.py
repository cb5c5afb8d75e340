"""Real frames for flow, stabilizer and metric tests (from ../shared/data; skipped when absent)."""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tests.conftest import shared_data_dir


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data file {path} not found (set VIDCOLOR_SHARED_DATA to the shared data folder)")
    return path


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) float32 RGB in [0, 1]."""
    img = cv2.imread(str(_require(path)), cv2.IMREAD_COLOR)
    return np.ascontiguousarray(img[:, :, ::-1]).astype(np.float32) / 255.0


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """(H, W, 3) or (T, H, W, 3) -> (1 or T, 3, H, W) float32."""
    t = torch.from_numpy(np.ascontiguousarray(img)).float()
    if t.dim() == 3:
        t = t[None]
    return t.permute(0, 3, 1, 2).contiguous()


def decode(path: Path, count: int, size: tuple[int, int] | None = None, start: int = 0) -> torch.Tensor:
    """Frames ``start .. start+count-1`` of a video as (T, 3, H, W) float32 in [0, 1], optionally
    area-resized (per frame, on uint8) to ``size = (H, W)``."""
    import av

    frames = []
    with av.open(str(_require(path))) as c:
        for i, fr in enumerate(c.decode(video=0)):
            if i < start:
                continue
            if len(frames) == count:
                break
            rgb = fr.to_ndarray(format="rgb24")
            if size is not None:
                rgb = cv2.resize(rgb, (size[1], size[0]), interpolation=cv2.INTER_AREA)
            frames.append(rgb)
    return to_tensor(np.stack(frames).astype(np.float32) / 255.0)


def require_data_dir() -> Path:
    d = shared_data_dir()
    if not d.is_dir():
        pytest.skip(f"shared data not found at {d} (set VIDCOLOR_SHARED_DATA to its folder)")
    return d


@functools.cache
def _kodak() -> np.ndarray:
    return read_rgb(require_data_dir() / "images" / "color_kodak24" / "kodim05.png")


@functools.cache
def _bedroom() -> torch.Tensor:
    return decode(require_data_dir() / "videos" / "sam2_bedroom.mp4", 12, size=(270, 480))


def load_kodak() -> np.ndarray:
    """Kodak photo 768x512, (H, W, 3) float32 (a copy: tests may modify it)."""
    return _kodak().copy()


def load_bedroom() -> torch.Tensor:
    """First 12 frames of sam2_bedroom.mp4 (real handheld footage), area-downscaled to 270x480."""
    return _bedroom().clone()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return require_data_dir()


@pytest.fixture(scope="session")
def sintel(data_dir: Path) -> list[np.ndarray]:
    """Two consecutive MPI-Sintel frames (RAFT demo), 1024x436, (H, W, 3) float32."""
    folder = data_dir / "frames" / "sintel_raft_demo"
    return [read_rgb(folder / f"frame_{i:04d}.png") for i in (16, 17)]


@pytest.fixture
def kodak() -> np.ndarray:
    return load_kodak()
