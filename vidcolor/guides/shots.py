"""Shot boundaries and the small lightness a guided run plans with.

Guides never cross a scene cut, so the planning pass (:mod:`vidcolor.guides.plan`) and
``vidcolor keyframes`` both find shots the same way: each decoded frame's luma becomes CIE L* (the
colorizer's own table, :func:`vidcolor.color.grey_lightness_table`), shrunk to the colorizer's
working size (:func:`small_lightness`: the L* the model sees, so propagation and fallback share one
grid), and :class:`CutDetector` applies the stabilizer's test to consecutive frames: a cut is a frame
where more than ``scene_cut`` of the picture fails the motion-compensated photometric check
(:meth:`vidcolor.stages.stabilize.Stabilize.blend_values`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from vidcolor.color import grey_lightness_table
from vidcolor.io.probe import VideoMeta
from vidcolor.models.runtime import resize, working_size
from vidcolor.stages.stabilize import Stabilize


def full_lightness(grey: np.ndarray) -> torch.Tensor:
    """``(T, H, W)`` or ``(T, H, W, 1)`` uint8 full-range luma -> ``(T, 1, H, W)`` float32 L* in
    [0, 100] (the grey of each level, as the colorizer reads luma input)."""
    import cv2

    g = np.ascontiguousarray(grey.reshape(grey.shape[0], grey.shape[1], grey.shape[2]))
    table = grey_lightness_table()
    return torch.from_numpy(np.stack([cv2.LUT(f, table) for f in g])).unsqueeze(1)


def small_lightness(L: torch.Tensor, render_size: int) -> torch.Tensor:
    """Full-size L* ``(T, 1, H, W)`` -> L* at the colorizer's working size (short side
    ``render_size``), with the colorizer's own resize."""
    return resize(L, working_size(L.shape[-2], L.shape[-1], render_size))


class CutDetector:
    """Scene cuts of a sequence of working-size L* frames fed in order (``feed``). The first frame
    fed, and any frame that does not continue the previous one, starts a shot."""

    def __init__(self, flow: str = "auto", scene_cut: float = 0.35, photo_tol: float = 0.05,
                 device: str | torch.device | None = None) -> None:
        self._test = Stabilize(strength=1.0, flow=flow, mode="ab", scene_cut=scene_cut, flow_size=1 << 12,
                               photo_tol=photo_tol, device=device, threads=0)

    def feed(self, L_small: torch.Tensor, index: int) -> list[bool]:
        """For frames ``index ... index + T - 1`` (``(T, 1, h, w)`` L* in [0, 100]): whether each starts
        a shot."""
        luma = (L_small.float() / 100.0).clamp_(0, 1)
        continued, _ = self._test.blend_values(luma, luma.clone(), index)
        return [not c for c in continued]

    @property
    def test(self) -> Stabilize:
        """The stabilizer whose test decides the cuts."""
        return self._test

    @property
    def motion(self) -> tuple[int, torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """What the last ``feed`` computed: ``(first frame, flows t -> t-1, confidences, flows t-1 -> t)``
        (``Stabilize.last_motion``), for the planning pass to reuse."""
        return self._test.last_motion

    def reset(self) -> None:
        self._test.reset()


def scan_lightness(path: str | Path, meta: VideoMeta, render_size: int, chunk_size: int = 16,
                   allow_truncated: bool = False) -> Iterator[tuple[int, torch.Tensor, np.ndarray]]:
    """Decode the film's luma once, in order: ``(index of the first frame, L* at working size
    (T, 1, h, w), the decoded luma (T, H, W, 1) uint8)`` per chunk."""
    from vidcolor.io.reader import VideoReader

    with VideoReader(path, meta=meta, queue_size=2 * chunk_size, grey=True,
                     allow_truncated=allow_truncated) as reader:
        for fc in reader.chunks(chunk_size):
            yield fc.index, small_lightness(full_lightness(fc.frames), render_size), fc.frames


def shot_starts(path: str | Path, meta: VideoMeta, render_size: int = 160, flow: str = "auto",
                scene_cut: float = 0.35, photo_tol: float = 0.05) -> list[int]:
    """The first frame of every shot of the film (0 first)."""
    cuts = CutDetector(flow, scene_cut, photo_tol)
    starts: list[int] = []
    for index, L_small, _ in scan_lightness(path, meta, render_size):
        starts += [index + k for k, s in enumerate(cuts.feed(L_small, index)) if s]
    return starts
