"""Training samples: clips of consecutive frames from image and video folders.

Every sample is a *clip* ``(T, 3, crop, crop)`` float32 RGB in [0, 1]: ``T = data.clip_len``
frames ``data.clip_stride`` apart from a random start in a random source (a still image is a
static clip), resized to short side ``load_size`` and cropped at a random place, optionally
flipped; the crop and flip are the same for every frame of the clip (and for both sides of an
aligned pair), so motion between frames stays real motion for the temporal loss.

Determinism: sample ``k`` draws everything from ``numpy.random.default_rng([seed, stream, k])``
and nothing else, and step ``s`` of rank ``r`` of ``W`` processes uses samples
``(s * W + r) * B + i`` (:class:`StepBatchSampler`). So the data order is a pure function of
(seed, step): a resumed run sees exactly the batches an uninterrupted run would, whatever the
number of loader workers, with no sampler state to save.

Three datasets, as pytorch-CycleGAN-and-pix2pix's dataset modes:

* :class:`ClipDataset`: one domain (colour footage for colorization: the pairs L -> ab are made
  on the fly by the trainer, pix2pix's "colorization" mode);
* :class:`AlignedClipDataset`: A/B folders with the same file names (pix2pix "aligned");
* :class:`UnalignedClipDataset`: independent samples of domains A and B (CycleGAN "unaligned").
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from vidcolor.errors import InputError
from vidcolor.training.decoding import close_readers
from vidcolor.training.media import ScanResult, Source, read_clip
from vidcolor.training.recipe import DataConfig


class ClipDataset(Dataset):
    """``dataset[k]`` -> ``{"a": (T, 3, crop, crop) float32 RGB in [0, 1]}`` for any integer ``k >= 0``.

    Sources are drawn uniformly (an image counts as much as a video, so a folder of 700 photos and
    20 clips is mostly photos) unless ``cfg.video_share`` > 0 and there are both kinds: then a
    sample is a video's with that probability (videos uniformly among themselves, images too).
    ``stream`` separates the random draws of datasets built from the same seed (domain B uses
    stream 1).
    """

    def __init__(self, sources: list[Source], cfg: DataConfig, seed: int, stream: int = 0, key: str = "a"):
        if not sources:
            raise InputError("no usable images or videos in the training data")
        self.sources, self.cfg, self.seed, self.stream, self.key = list(sources), cfg, int(seed), stream, key
        kinds = [s.kind == "video" for s in self.sources]
        self.pools = None
        if cfg.video_share > 0 and any(kinds) and not all(kinds):
            self.pools = ([i for i, v in enumerate(kinds) if v], [i for i, v in enumerate(kinds) if not v])

    def __len__(self) -> int:  # samples are indexed by a global counter; this is only for DataLoader
        return 2**62

    def draw(self, k: int) -> dict:
        """The random choices of sample ``k``: source, start frame, crop position (fractions), flip."""
        rng = np.random.default_rng([self.seed, self.stream, int(k)])
        if self.pools is None:  # the draws of recipes written before video_share, unchanged
            src = int(rng.integers(len(self.sources)))
        else:
            pool = self.pools[0] if rng.random() < self.cfg.video_share else self.pools[1]
            src = pool[int(rng.integers(len(pool)))]
        source = self.sources[src]
        span = (self.cfg.clip_len - 1) * self.cfg.clip_stride + 1
        start = int(rng.integers(max(1, source.frames - span + 1))) if source.kind == "video" else 0
        return {"source": src, "start": start, "fy": float(rng.random()), "fx": float(rng.random()),
                "flip": bool(self.cfg.flip and rng.random() < 0.5)}

    def cut(self, frames: np.ndarray, d: dict) -> torch.Tensor:
        """(T, H, W, 3) uint8 -> (T, 3, crop, crop) float32 in [0, 1] with the drawn crop and flip."""
        c = self.cfg.crop
        h, w = frames.shape[1:3]
        y, x = int(d["fy"] * (h - c + 1)), int(d["fx"] * (w - c + 1))
        frames = frames[:, y:y + c, x:x + c]
        if d["flip"]:
            frames = frames[:, :, ::-1]
        return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255.0)

    def clip(self, k: int) -> tuple[torch.Tensor, dict]:
        d = self.draw(k)
        frames = read_clip(self.sources[d["source"]], d["start"], self.cfg.clip_len, self.cfg.clip_stride,
                           self.cfg.load_size)
        return self.cut(frames, d), d

    def __getitem__(self, k: int) -> dict:
        return {self.key: self.clip(k)[0]}


class AlignedClipDataset(ClipDataset):
    """``{"a": clip, "b": clip}``: the same frames, crop and flip of a source in A and its
    namesake in B (B is resized to A's decoded size first)."""

    def __init__(self, pairs: list[tuple[Source, Source]], cfg: DataConfig, seed: int):
        super().__init__([a for a, _ in pairs], cfg, seed)
        self.partners = [b for _, b in pairs]

    def __getitem__(self, k: int) -> dict:
        d = self.draw(k)
        a = read_clip(self.sources[d["source"]], d["start"], self.cfg.clip_len, self.cfg.clip_stride,
                      self.cfg.load_size)
        b = read_clip(self.partners[d["source"]], d["start"], self.cfg.clip_len, self.cfg.clip_stride,
                      self.cfg.load_size)
        if b.shape != a.shape:
            import cv2

            b = np.stack([cv2.resize(f, (a.shape[2], a.shape[1]), interpolation=cv2.INTER_AREA) for f in b])
        return {"a": self.cut(a, d), "b": self.cut(b, d)}


class UnalignedClipDataset(Dataset):
    """``{"a": clip of A, "b": clip of B}`` drawn independently (streams 0 and 1)."""

    def __init__(self, sources_a: list[Source], sources_b: list[Source], cfg: DataConfig, seed: int):
        if not sources_b:
            raise InputError("no usable images or videos in domain B (--data-b)")
        self.a = ClipDataset(sources_a, cfg, seed, stream=0, key="a")
        self.b = ClipDataset(sources_b, cfg, seed, stream=1, key="b")

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, k: int) -> dict:
        return {**self.a[k], **self.b[k]}


def pair_by_name(a: ScanResult, b: ScanResult, roots_a: list[str], roots_b: list[str]) -> tuple[list, list[str]]:
    """Match A and B sources by path relative to their folder, without extension
    (``A/x/0001.jpg`` <-> ``B/x/0001.png``). Returns (pairs, names without a partner)."""
    def keyed(scan: ScanResult, roots: list[str]) -> dict[str, Source]:
        out = {}
        for s in scan.sources:
            p = Path(s.path).resolve()
            rel = next((p.relative_to(Path(r).resolve()) for r in roots
                        if Path(r).is_dir() and p.is_relative_to(Path(r).resolve())), Path(p.name))
            out[rel.with_suffix("").as_posix()] = s
        return out

    ka, kb = keyed(a, roots_a), keyed(b, roots_b)
    pairs = [(ka[k], kb[k]) for k in sorted(ka) if k in kb]
    lonely = sorted(set(ka) ^ set(kb))
    return pairs, lonely


class StepBatchSampler(Sampler):
    """Batches of global sample indices for steps ``start .. stop-1``: step ``s`` of rank ``r`` of
    ``world`` takes ``(s * world + r) * batch + i`` for ``i < batch``."""

    def __init__(self, start: int, stop: int, batch: int, rank: int = 0, world: int = 1):
        self.start, self.stop, self.batch, self.rank, self.world = start, stop, batch, rank, world

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        for s in range(self.start, self.stop):
            base = (s * self.world + self.rank) * self.batch
            yield list(range(base, base + self.batch))


def worker_init(_: int) -> None:
    """DataLoader workers: one torch thread each, and no decord readers inherited from the parent."""
    close_readers()
    torch.set_num_threads(1)


def make_loader(dataset: Dataset, start: int, stop: int, batch: int, rank: int, world: int,
                workers: int) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(dataset, batch_sampler=StepBatchSampler(start, stop, batch, rank, world),
                                       num_workers=workers, worker_init_fn=worker_init if workers else None,
                                       persistent_workers=False, prefetch_factor=2 if workers else None)
