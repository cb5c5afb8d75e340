"""The ``restoration`` task: clean clips degraded on the fly (:mod:`vidcolor.degrade`) -> their middle frame.

A sample is a clip of ``data.clip_len`` consecutive frames drawn as any :class:`ClipDataset` sample
(source, start, crop, flip from ``default_rng([seed, 0, k])``); its frames, as loaded (short side
``data.load_size``), go through ``degrade(frames, spec, seed=s, start=start)`` with ``s`` drawn
from ``default_rng([seed, 2, k])``, and both versions get the same crop and flip. So:

* the degradation is a pure function of (recipe seed, sample index): a resumed run sees exactly the
  batches an uninterrupted run would, whatever the number of loader workers;
* the spec's counts (``specks``, ``scratches``) are per frame at ``load_size``: a crop holds the
  specks that fall inside it (20 specks on a 683x384 frame put about 0.7 in a 96x96 crop);
* each frame of the clip gets its own flicker gain, grain, specks and scratches, as consecutive
  frames of a degraded film do (frame ``start + i`` draws from ``default_rng([s, start + i])``).

The objective stacks the degraded clip on channels (``(B, 1, 3 * T, H, W)``, oldest frame first)
as the input of :class:`vidcolor.models.restorenet.RestoreNet` and takes the clean middle frame as
the target; L1 alone, and ``L1_base`` is the L1 of the degraded middle frame (the network's answer
before training).
"""

from __future__ import annotations

import numpy as np
import torch

from vidcolor.degrade import degrade
from vidcolor.training.datasets import ClipDataset
from vidcolor.training.media import Source, read_clip
from vidcolor.training.recipe import DataConfig, degradation

def sample_seed(seed: int, k: int) -> int:
    """The degradation seed of sample ``k`` of a run seeded ``seed``."""
    return int(np.random.default_rng([int(seed), 2, int(k)]).integers(2**62))


class RestorationDataset(ClipDataset):
    """``dataset[k]`` -> ``{"a": degraded clip, "b": clean clip}``, each ``(T, 3, crop, crop)``
    float32 RGB in [0, 1], the same frames, crop and flip (see the module docstring)."""

    def __init__(self, sources: list[Source], cfg: DataConfig, seed: int):
        super().__init__(sources, cfg, seed)
        self.spec = degradation(cfg)

    def __getitem__(self, k: int) -> dict:
        d = self.draw(k)
        clean = read_clip(self.sources[d["source"]], d["start"], self.cfg.clip_len, self.cfg.clip_stride,
                          self.cfg.load_size)
        bad, _ = degrade(np.ascontiguousarray(clean), self.spec, seed=sample_seed(self.seed, k), start=d["start"])
        return {"a": self.cut(bad, d), "b": self.cut(clean, d)}


def restoration_pair(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Degraded and clean clips ``(B, T, 3, H, W)`` -> (input ``(B, 1, 3T, H, W)``: the degraded
    frames stacked on channels, target ``(B, 1, 3, H, W)``: the clean middle frame)."""
    m = a.shape[1] // 2
    return a.flatten(1, 2).unsqueeze(1), b[:, m:m + 1]
