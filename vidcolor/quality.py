"""Quality scores of a stylized output for ``vidcolor eval``: how far it moved from its source, how
close it came to a painting, to a set of reference pictures, and to what a trained critic calls real.

All scores are taken on the same frames: up to ``samples`` (default 16) evenly spaced frames of the
output and the same frames of the source, each resized to a short side of ``WORKING_SIZE`` (256 px,
area interpolation). The networks and measures are ``vidcolor.models.features`` (the frozen
ImageNet EfficientNet-Lite0):

* ``content_distance``: per frame, the mean squared difference of the output's and the source's
  feature maps at ``CONTENT_TAP`` (stride 8); the mean over the sampled frames. 0 for identical frames.
* ``style_distance`` (``--style-image``): per frame, the Gram-matrix distance at ``STYLE_TAPS``
  (strides 2, 4 and 8: the painting styles' training loss) to the painting, read at a short side of 256 px; ``style_distance_source`` is the source's, and
  ``style_ratio`` = output / source (a painted output should be well below 1; the issue's bar: 0.5).
* ``ab_hist_distance`` (``--style-image``): the Hellinger distance ``sqrt(1 - sum sqrt(p q))`` (0 =
  the same, 1 = no overlap) between 2-D a*b* histograms (CIELAB, 10-unit bins over -130..130) of all
  sampled output pixels and of the painting; ``ab_hist_distance_source`` for the source, and
  ``colorfulness_style`` (Hasler & Süsstrunk) of the painting next to the output's colorfulness.
* ``frechet_distance`` (``--reference-set DIR``): the Fréchet distance between Gaussians fitted to the
  pooled 1280-d features of the sampled output frames and of the set's pictures (every image, and
  ``samples`` evenly spread frames of every video); ``frechet_distance_source`` for the source. Not
  comparable with Inception FID (another network and feature space); with few samples it is biased
  upward, so compare only runs with the same sample counts.
* ``realism`` (``--critic RUN``): the mean of ``vidcolor.critic.Critic.score`` (higher = more real)
  over the sampled output frames; ``realism_source`` for the source.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vidcolor.errors import InputError, VidcolorError

WORKING_SIZE = 256
SAMPLES = 16
AB_BIN = 10.0
AB_LIMIT = 130.0
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".nut", ".mxf", ".mpg", ".mpeg", ".ts",
                    ".m2ts", ".ogv", ".flv", ".wmv")


def resize_short(rgb: np.ndarray, size: int) -> np.ndarray:
    """``(H, W, 3)`` uint8 resized so its short side is ``size`` (area when shrinking, bilinear when
    enlarging)."""
    import cv2

    h, w = rgb.shape[:2]
    scale = size / min(h, w)
    if scale == 1:
        return np.ascontiguousarray(rgb)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    return cv2.resize(np.ascontiguousarray(rgb), (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def to_tensor(images: list[np.ndarray] | np.ndarray) -> torch.Tensor:
    """uint8 ``(H, W, 3)`` images of one size -> ``(N, 3, H, W)`` float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(np.stack(list(images)))).permute(0, 3, 1, 2).float().div_(255)


def read_image(path: str | Path, size: int = WORKING_SIZE) -> np.ndarray:
    """An image file as uint8 RGB at a short side of ``size``; ``InputError`` when it does not read."""
    import cv2

    p = Path(path)
    if not p.is_file():
        raise InputError(f"{path}: no such file")
    bgr = cv2.imdecode(np.fromfile(str(p), np.uint8), cv2.IMREAD_COLOR) if p.stat().st_size else None
    if bgr is None:
        raise InputError(f"{path}: cannot read the image")
    return resize_short(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size)


def read_reference_set(folder: str | Path, per_video: int = SAMPLES, size: int = WORKING_SIZE) -> list[np.ndarray]:
    """The pictures of a reference set: every image of ``folder`` (and its subfolders) and up to
    ``per_video`` evenly spread frames of every video, each at a short side of ``size``. Other files are
    ignored; an image or video that does not read, or a set with fewer than 2 pictures, is an
    ``InputError``."""
    from vidcolor.io.probe import probe
    from vidcolor.io.sample import sample_frames

    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{folder}: no such folder (--reference-set takes a folder of images and/or videos)")
    files = sorted(p for p in root.rglob("*") if p.is_file() and not any(
        part.startswith(".") for part in p.relative_to(root).parts))
    out: list[np.ndarray] = []
    for p in files:
        suffix = p.suffix.lower()
        if suffix in IMAGE_EXTENSIONS:
            out.append(read_image(p, size))
        elif suffix in VIDEO_EXTENSIONS:
            frames = sample_frames(p, probe(p), per_video)
            if not len(frames):
                raise InputError(f"{p}: no frame decodes")
            out.extend(resize_short(f, size) for f in frames)
    if len(out) < 2:
        raise InputError(f"{folder}: the reference set needs at least 2 pictures, found {len(out)} "
                         f"(images {' '.join(IMAGE_EXTENSIONS)}; videos {' '.join(VIDEO_EXTENSIONS)})")
    return out


def load_critic_run(run: str | Path):
    """``vidcolor.critic.load_critic`` of a training run folder, its failures as one-line ``InputError``s."""
    if not Path(run).is_dir():
        raise InputError(f"{run}: no such training run folder (--critic takes a run folder with a saved critic)")
    try:
        from vidcolor.critic import load_critic
    except ImportError as exc:
        raise InputError(f"--critic needs vidcolor.critic, which cannot be imported ({exc})") from None
    try:
        return load_critic(Path(run))
    except VidcolorError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise InputError(f"{run}: cannot load a critic from this run ({exc})") from None


def ab_histogram(frames: torch.Tensor) -> np.ndarray:
    """Normalised 2-D histogram of a*b* (CIELAB, D65, OpenCV's float sRGB conversion) over all pixels of
    ``(N, 3, H, W)`` RGB in [0, 1]: ``AB_BIN``-unit bins over ``-AB_LIMIT..AB_LIMIT`` (values beyond
    are put in the edge bins)."""
    import cv2

    side = round(2 * AB_LIMIT / AB_BIN)
    hist = np.zeros(side * side, np.int64)
    for f in frames:  # one frame at a time: bounded memory
        lab = cv2.cvtColor(np.ascontiguousarray(f.permute(1, 2, 0).float().numpy()), cv2.COLOR_RGB2Lab)
        idx = np.clip(((lab[..., 1:] + AB_LIMIT) // AB_BIN).astype(np.int64), 0, side - 1).reshape(-1, 2)
        hist += np.bincount(idx[:, 0] * side + idx[:, 1], minlength=side * side)
    return hist.reshape(side, side) / max(int(hist.sum()), 1)


def hellinger(p: np.ndarray, q: np.ndarray) -> float:
    """Hellinger distance of two normalised histograms: ``sqrt(1 - sum sqrt(p q))``, in [0, 1]."""
    return math.sqrt(max(0.0, 1.0 - float(np.sqrt(p * q).sum())))


class FrameSampler:
    """Evenly spaced frames of videos read in lockstep, without knowing their length: every
    ``stride``-th frame is kept at the working size and the stride doubles (every other kept frame
    dropped) when more than ``2 * count`` are held; ``pick`` spreads ``count`` over the kept ones."""

    def __init__(self, count: int = SAMPLES, size: int = WORKING_SIZE) -> None:
        self.count, self.size, self.stride = count, size, 1
        self.kept: list[tuple[int, dict[str, np.ndarray]]] = []

    def offer(self, index: int, frames: dict[str, np.ndarray]) -> None:
        if index % self.stride:
            return
        self.kept.append((index, {k: resize_short(v, self.size) for k, v in frames.items()}))
        if len(self.kept) > 2 * self.count:
            self.stride *= 2
            self.kept = [k for k in self.kept if k[0] % self.stride == 0]

    def pick(self) -> tuple[list[int], dict[str, torch.Tensor]]:
        kept = self.kept
        if len(kept) > self.count:
            kept = [kept[i] for i in np.linspace(0, len(kept) - 1, self.count).round().astype(int)]
        if not kept:
            return [], {}
        return [i for i, _ in kept], {k: to_tensor([f[k] for _, f in kept]) for k in kept[0][1]}


@dataclass
class QualityScores:
    """The quality scores of one output (None: the option that gives it was not used)."""

    frames: list[int]                 # the sampled frame indices
    working_size: int
    content_distance: float
    style_distance: float | None = None
    style_distance_source: float | None = None
    style_ratio: float | None = None
    ab_hist_distance: float | None = None
    ab_hist_distance_source: float | None = None
    colorfulness_style: float | None = None
    frechet_distance: float | None = None
    frechet_distance_source: float | None = None
    realism: float | None = None
    realism_source: float | None = None
    style_image: str | None = None
    reference_set: str | None = None
    reference_count: int | None = None
    critic: str | None = None
    per_frame: dict[str, list[float]] = field(default_factory=dict)

    METRICS = ("content_distance", "style_distance", "style_distance_source", "style_ratio", "ab_hist_distance",
               "ab_hist_distance_source", "colorfulness_style", "frechet_distance", "frechet_distance_source",
               "realism", "realism_source")

    def summary(self) -> dict[str, float | None]:
        return {k: getattr(self, k) for k in self.METRICS}

    def to_json(self) -> dict[str, Any]:
        return {"frames": self.frames, "working_size": self.working_size, "style_image": self.style_image,
                "reference_set": self.reference_set, "reference_count": self.reference_count,
                "critic": self.critic, "per_frame": self.per_frame}

    def table_rows(self) -> list[tuple[str, str, str]]:
        """(metric, value, note) rows for the ``vidcolor eval`` table."""
        def f(v: float | None, spec: str = ".4g") -> str:
            return "-" if v is None or not math.isfinite(v) else format(v, spec)

        n = len(self.frames)
        rows = [("content distance", f(self.content_distance),
                 f"to the source (EfficientNet-Lite0 features); 0 = same; {n} frames at short side {self.working_size}")]
        if self.style_image is not None:
            rows.append(("style distance", f(self.style_distance),
                         f"Gram, to the painting; source {f(self.style_distance_source)}, "
                         f"ratio {f(self.style_ratio, '.3f')} (lower = closer)"))
            rows.append(("a*b* histogram distance", f(self.ab_hist_distance, ".3f"),
                         f"Hellinger, to the painting; source {f(self.ab_hist_distance_source, '.3f')}; "
                         f"painting colorfulness {f(self.colorfulness_style, '.2f')}"))
        if self.reference_set is not None:
            rows.append(("Fréchet distance", f(self.frechet_distance),
                         f"EfficientNet-Lite0, not Inception FID; source {f(self.frechet_distance_source)}; "
                         f"{n} vs {self.reference_count} pictures"))
        if self.critic is not None:
            rows.append(("realism", f(self.realism), f"critic score, higher = more real; source {f(self.realism_source)}"))
        return rows


class Quality:
    """The quality inputs, read and checked when built (before any video is decoded: a missing
    painting, an unreadable reference set or a bad critic run fails at once), a ``FrameSampler`` fed
    by ``evaluate`` through ``offer``, and ``scores`` once the videos are read."""

    def __init__(self, *, style_image: str | Path | None = None, reference_set: str | Path | None = None,
                 critic: str | Path | None = None, samples: int = SAMPLES, size: int = WORKING_SIZE) -> None:
        from vidcolor.models.features import CONTENT_TAP, STYLE_TAPS, PerceptualFeatures

        if samples < 2:
            raise InputError(f"the quality scores need at least 2 sampled frames, got {samples}")
        self.size, self.sampler = size, FrameSampler(samples, size)
        self.style_image = None if style_image is None else str(style_image)
        self.reference_set = None if reference_set is None else str(reference_set)
        self.critic_run = None if critic is None else str(critic)
        painting = read_image(style_image, size) if style_image is not None else None
        reference = read_reference_set(reference_set, samples, size) if reference_set is not None else None
        self.critic = load_critic_run(critic) if critic is not None else None
        self.features = PerceptualFeatures(taps=tuple(sorted({*STYLE_TAPS, CONTENT_TAP})))
        self.style_index = [self.features.taps.index(t) for t in STYLE_TAPS]
        self.content_index = self.features.taps.index(CONTENT_TAP)
        self.painting = to_tensor([painting]) if painting is not None else None
        with torch.no_grad():
            self.painting_grams = None if painting is None else self.grams(self.painting)
        self.reference_features = None if reference is None else self.pooled(reference)

    def pooled(self, pictures: list[np.ndarray], batch: int = 16) -> torch.Tensor:
        """Pooled features of uint8 pictures of any sizes, batched by size, in the pictures' order."""
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, p in enumerate(pictures):
            by_shape.setdefault(p.shape, []).append(i)
        rows: dict[int, torch.Tensor] = {}
        for idx in by_shape.values():
            for k in range(0, len(idx), batch):
                part = idx[k:k + batch]
                rows.update(zip(part, self.features.pooled(to_tensor([pictures[i] for i in part]))))
        return torch.stack([rows[i] for i in range(len(pictures))])

    def grams(self, frames: torch.Tensor) -> list[torch.Tensor]:
        from vidcolor.models.features import gram

        feats = self.features(frames)
        return [gram(feats[i]) for i in self.style_index]

    def offer(self, index: int, frames: dict[str, np.ndarray]) -> None:
        """Frame ``index`` of the output and the source (uint8 ``(H, W, 3)``), as they are read."""
        self.sampler.offer(index, frames)

    @torch.no_grad()
    def scores(self) -> QualityScores:
        from vidcolor.metrics import colorfulness
        from vidcolor.models.features import content_distance, frechet_distance, style_distance

        indices, frames = self.sampler.pick()
        if not indices:
            raise InputError("no frames to score")
        out, src = frames["output"], frames["source"]
        feats = {k: self.features(v) for k, v in frames.items()}
        c = self.content_index
        content = content_distance(feats["output"][c], feats["source"][c])
        s = QualityScores(frames=indices, working_size=self.size, content_distance=float(content.mean()),
                          style_image=self.style_image, reference_set=self.reference_set, critic=self.critic_run,
                          per_frame={"content_distance": content.tolist()})
        if self.painting_grams is not None:
            style = {k: style_distance([f[i] for i in self.style_index], self.painting_grams) for k, f in feats.items()}
            s.style_distance, s.style_distance_source = float(style["output"].mean()), float(style["source"].mean())
            s.style_ratio = s.style_distance / s.style_distance_source if s.style_distance_source > 0 else math.nan
            s.per_frame.update(style_distance=style["output"].tolist(), style_distance_source=style["source"].tolist())
            painting_hist = ab_histogram(self.painting)
            s.ab_hist_distance = hellinger(ab_histogram(out), painting_hist)
            s.ab_hist_distance_source = hellinger(ab_histogram(src), painting_hist)
            s.colorfulness_style = colorfulness(self.painting)
        if self.reference_features is not None:
            s.reference_count = int(self.reference_features.shape[0])
            s.frechet_distance = frechet_distance(self.features.pooled(out), self.reference_features)
            s.frechet_distance_source = frechet_distance(self.features.pooled(src), self.reference_features)
        if self.critic is not None:
            real = {k: self.critic.score(v).float().flatten() for k, v in frames.items()}
            s.realism, s.realism_source = float(real["output"].mean()), float(real["source"].mean())
            s.per_frame.update(realism=real["output"].tolist(), realism_source=real["source"].tolist())
        return s


def plot_quality(ax, scores: QualityScores) -> None:
    """Per-sampled-frame content and style distances on a matplotlib axis (style on a twin axis)."""
    pf, xs = scores.per_frame, scores.frames
    ax.plot(xs, pf["content_distance"], "o-", label=f"content distance (mean {scores.content_distance:.4g})")
    ax.set_ylabel("content distance")
    ax.set_xlabel("frame")
    handles, labels = ax.get_legend_handles_labels()
    if "style_distance" in pf:
        ax2 = ax.twinx()
        ax2.plot(xs, pf["style_distance"], "s-", color="C1", label=f"style distance (mean {scores.style_distance:.4g})")
        ax2.plot(xs, pf["style_distance_source"], "s--", color="C2", alpha=0.7,
                 label=f"source style distance (mean {scores.style_distance_source:.4g})")
        ax2.set_ylabel("style distance (Gram)")
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, loc="upper right")
