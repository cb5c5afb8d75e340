"""Finding training media: folder scans, the shared data's eval split, and clips (decoding in
``training/decoding.py``).

``scan(paths, ...)`` walks folders and files, keeps what decodes (images with OpenCV, videos with
decord, PyAV as the fallback), and reports each unreadable file once (one warning, counted).
``read_clip(source, start, count, stride, load_size)`` decodes ``count`` frames of a source and
resizes them so their short side is ``load_size``.

The shared data folder (``../shared/data``) has a ``MANIFEST.md`` whose *splits* say which clips
are held out. :func:`manifest_exclusions` turns the splits named in a recipe into paths to skip,
including sources an eval clip was cut from (the full Tears of Steel excerpt contains the frames
of the eval clip ``tears_of_steel_battle_part4.mp4``: training on it would be training on eval).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

from vidcolor.training.decoding import (decode_frames, decode_window, forget_reader, read_image, resize_short,
                                       video_info)

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}
VIDEO_EXTS = {".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".ts", ".ogv", ".wmv", ".flv"}
# Mean |ab| (Lab units) below which a source counts as black-and-white, taken as the max over a
# few frames (a film starting on black is not grey). Shared data: B&W films 0.0-0.2, the least
# colourful colour clip (a parking lot) 1.3-2.0.
GREY_CHROMA = 1.0

Warn = Callable[[str], None]


@dataclass(frozen=True)
class Source:
    """One usable image or video. ``frames`` is 1 for images; ``height``/``width`` as decoded."""

    path: str
    kind: str  # "image" | "video"
    frames: int
    height: int
    width: int
    backend: str  # "cv2" | "decord" | "pyav" | "cache"
    cache: str = ""  # (T, H, W, 3) uint8 .npy of the frames at load size, read memory-mapped


@dataclass
class ScanResult:
    sources: list[Source] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): warned once each
    excluded: list[str] = field(default_factory=list)             # eval split / recipe exclude list
    grey: list[str] = field(default_factory=list)                 # colour-less sources (colorize only)

    def summary(self) -> dict:
        return {"images": sum(s.kind == "image" for s in self.sources),
                "videos": sum(s.kind == "video" for s in self.sources),
                "video_frames": sum(s.frames for s in self.sources if s.kind == "video"),
                "unreadable": len(self.skipped), "excluded": len(self.excluded), "grey_skipped": len(self.grey)}

    def to_json(self) -> dict:
        return {"sources": [asdict(s) for s in self.sources], "skipped": self.skipped, "excluded": self.excluded,
                "grey": self.grey}

    @classmethod
    def from_json(cls, data: dict) -> "ScanResult":
        return cls([Source(**s) for s in data["sources"]], [tuple(x) for x in data["skipped"]],
                   list(data["excluded"]), list(data["grey"]))


# -- the shared data manifest -------------------------------------------------------------------------
_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*([^|]+?)\s*\|\s*([^|]*?)\s*\|\s*`([^`]*)`\s*\|")


def find_manifest(path: str | Path, levels: int = 3) -> Path | None:
    """``MANIFEST.md`` in ``path`` or up to ``levels`` folders above it (the shared data root)."""
    p = Path(path).resolve()
    p = p if p.is_dir() else p.parent
    for _ in range(levels + 1):
        if (p / "MANIFEST.md").is_file():
            return p / "MANIFEST.md"
        p = p.parent
    return None


def manifest_exclusions(manifest: Path, splits: Iterable[str]) -> set[Path]:
    """Resolved paths of the manifest rows whose split is in ``splits``.

    Rows are ``| `file` | split | source | `path in source` | ...``. When ``"eval"`` is among the
    splits, a row whose path in source is the *whole* source that an eval row was cut from
    (``video.webm`` vs ``video.webm [t=46.958-70.542 s]``) is excluded too: it contains eval frames.
    """
    splits = {s.strip().lower() for s in splits}
    rows = []
    for line in manifest.read_text(encoding="utf-8").splitlines():
        m = _ROW.match(line)
        if m:
            rows.append((m.group(1), m.group(2).strip().lower(), m.group(3).strip(), m.group(4).strip()))
    root = manifest.parent
    out = {(root / f).resolve() for f, split, _, _ in rows if split in splits}
    if "eval" in splits:
        eval_sources = {(src, re.sub(r"\s*\[.*\]$", "", pin)) for _, split, src, pin in rows if split == "eval"}
        out |= {(root / f).resolve() for f, _, src, pin in rows if (src, pin) in eval_sources}
    return out


# -- scanning -----------------------------------------------------------------------------------------
def _iter_files(paths: Iterable[str]) -> Iterable[Path]:
    for p in paths:
        path = Path(p).expanduser()
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for f in sorted(files):
                    if not f.startswith("."):
                        yield Path(root) / f
        elif path.is_file():
            yield path


def _is_excluded(path: Path, patterns: Iterable[str], roots: list[Path]) -> bool:
    text = path.as_posix()
    for pat in patterns:
        if fnmatch.fnmatch(text, pat) or any(fnmatch.fnmatch(path.relative_to(r).as_posix(), pat)
                                             for r in roots if path.is_relative_to(r)):
            return True
    return False


def _chroma(rgb: np.ndarray) -> float:
    """Mean |ab| of an (H, W, 3) uint8 RGB thumbnail, in Lab units."""
    small = cv2.resize(rgb, (64, max(1, 64 * rgb.shape[0] // max(rgb.shape[1], 1))), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(small.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


def _cache_file(cache_dir: Path, path: Path, load_size: int, max_frames: int) -> Path:
    st = path.stat()
    key = f"{path.resolve()}:{st.st_size}:{st.st_mtime_ns}:{load_size}:{max_frames}"
    return cache_dir / f"{path.stem[:40]}-{hashlib.sha1(key.encode()).hexdigest()[:12]}.npy"


def _save_npy(path: Path, frames: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npy")
    np.save(tmp, frames)
    os.replace(tmp, path)


def _probe_image(path: Path, load_size: int, cache_dir: Path | None) -> tuple[Source, np.ndarray]:
    """Decode the image (so a damaged file is found now); with a cache, store it at ``load_size``."""
    if cache_dir is not None:
        cached = _cache_file(cache_dir, path, load_size, 0)
        if cached.is_file():
            arr = np.load(cached, mmap_mode="r")
            return Source(str(path), "image", 1, arr.shape[1], arr.shape[2], "cv2", str(cached)), arr[:1]
    img = read_image(str(path))
    if cache_dir is None:
        return Source(str(path), "image", 1, img.shape[0], img.shape[1], "cv2"), img[None]
    small = resize_short(img, load_size)
    _save_npy(cached, small[None])
    return Source(str(path), "image", 1, small.shape[0], small.shape[1], "cv2", str(cached)), small[None]


def _probe_video(path: Path, load_size: int, cache_dir: Path | None, max_frames: int) -> tuple[Source, np.ndarray]:
    """Open with decord (PyAV if decord is missing or refuses). With a cache, decode the frames used
    for training once (a damaged file fails here, not in the middle of training); without, decode
    the first and the last frame as a check. Returns the source and a few frames (for the grey check)."""
    if cache_dir is not None:
        cached = _cache_file(cache_dir, path, load_size, max_frames)
        if cached.is_file():
            arr = np.load(cached, mmap_mode="r")
            pick = np.linspace(0, len(arr) - 1, 5).round().astype(int)
            return Source(str(path), "video", len(arr), arr.shape[1], arr.shape[2], "cache", str(cached)), arr[pick]
    errors = []
    for backend in ("decord", "pyav"):
        try:
            if cache_dir is not None:
                frames = decode_window(str(path), backend, max_frames, load_size)
                _save_npy(cached, frames)
                pick = np.linspace(0, len(frames) - 1, 5).round().astype(int)
                return (Source(str(path), "video", len(frames), frames.shape[1], frames.shape[2], backend, str(cached)),
                        frames[pick])
            n, (h, w) = video_info(str(path), backend)
            if n < 1:
                raise ValueError("no frames")
            ends = decode_frames(str(path), backend, [0, n - 1])
            return Source(str(path), "video", n, h, w, backend), np.stack(ends)
        except Exception as exc:  # noqa: BLE001 - any decoder failure means: try the next backend
            forget_reader(str(path))
            errors.append(f"{backend}: {str(exc).splitlines()[-1][:120] if str(exc) else type(exc).__name__}")
    raise ValueError("; ".join(errors))


def scan(paths: Iterable[str], *, exclude: Iterable[str] = (), exclude_splits: Iterable[str] = ("eval",),
         skip_grey: bool = False, min_frames: int = 1, load_size: int = 256, cache_dir: str | Path | None = None,
         max_frames: int = 0, warn: Warn | None = None) -> ScanResult:
    """Usable sources under ``paths`` (folders are walked, sorted, hidden files ignored).

    Unreadable files (not an image or video, or failing to decode) are skipped with one ``warn``
    call each; files in ``exclude_splits`` of a MANIFEST.md above a data folder, or matching an
    ``exclude`` glob, are skipped silently (listed in ``excluded``); with ``skip_grey`` sources
    without chroma are dropped (listed in ``grey``); videos shorter than ``min_frames`` are unreadable
    for this recipe (warned).
    """
    paths = [str(p) for p in paths]
    result = ScanResult()
    roots = [Path(p).expanduser().resolve() for p in paths if Path(p).is_dir()]
    excluded: set[Path] = set()
    for p in paths:
        manifest = find_manifest(p)
        if manifest is not None and exclude_splits:
            excluded |= manifest_exclusions(manifest, exclude_splits)
    patterns = list(exclude)
    seen: set[Path] = set()
    cache = Path(cache_dir) if cache_dir is not None else None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    for path in _iter_files(paths):
        real = path.resolve()
        if real in seen:
            continue
        seen.add(real)
        if real in excluded or _is_excluded(real, patterns, roots) or _is_excluded(path, patterns, roots):
            result.excluded.append(str(path))
            continue
        ext = path.suffix.lower()
        try:
            if ext in IMAGE_EXTS:
                source, frame = _probe_image(path, load_size, cache)
            elif ext in VIDEO_EXTS:
                source, frame = _probe_video(path, load_size, cache, max_frames)
                if source.frames < min_frames:
                    raise ValueError(f"{source.frames} frames, a clip needs {min_frames}")
            else:
                raise ValueError("not an image or video file")
        except Exception as exc:  # noqa: BLE001
            reason = str(exc) or type(exc).__name__
            result.skipped.append((str(path), reason))
            if warn is not None:
                warn(f"{path}: skipped, unreadable ({reason})")
            continue
        if skip_grey and max(_chroma(f) for f in frame) < GREY_CHROMA:
            result.grey.append(str(path))
            continue
        result.sources.append(source)
    return result


def scan_key(paths: Iterable[str], **options) -> str:
    """A short hash of what a scan depends on (paths, file sizes and times, options), to reuse
    a saved scan on resume."""
    h = hashlib.sha256(repr((sorted(str(p) for p in paths), sorted(options.items()))).encode())
    for f in _iter_files(paths):
        st = f.stat()
        h.update(f"{f}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


def read_clip(source: Source, start: int, count: int, stride: int, load_size: int) -> np.ndarray:
    """``count`` frames ``stride`` apart from ``start`` (a still image repeats), each resized so its
    short side is ``load_size``: ``(count, H, W, 3)`` uint8 RGB."""
    if source.cache:
        arr = np.load(source.cache, mmap_mode="r")
        indices = [min(start + i * stride, len(arr) - 1) for i in range(count)] if len(arr) > 1 else [0] * count
        return np.ascontiguousarray(arr[indices])
    if source.kind == "image":
        img = resize_short(read_image(source.path), load_size)
        return np.repeat(img[None], count, axis=0)
    indices = [min(start + i * stride, source.frames - 1) for i in range(count)]
    frames = decode_frames(source.path, source.backend, indices)
    return np.stack([resize_short(f, load_size) for f in frames])
