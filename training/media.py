"""Finding training media: folder scans, the shared data's eval split, and clip decoding.

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
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

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


def _decode_window(path: str, backend: str, max_frames: int, load_size: int) -> np.ndarray:
    """Decode the whole video, or its middle ``max_frames`` frames, sequentially (fast: no seek per
    sample), each resized to short side ``load_size``: ``(T, H, W, 3)`` uint8."""
    out = []
    if backend == "decord":
        vr = _decord_reader(path)
        n = len(vr)
        start = (n - max_frames) // 2 if max_frames and n > max_frames else 0
        stop = start + min(n, max_frames or n)
        for i in range(start, stop, 16):
            for f in vr.get_batch(list(range(i, min(i + 16, stop)))).asnumpy():
                out.append(resize_short(f, load_size))
        _READERS.pop(path, None)
    else:
        import av

        n, _ = _video_info(path, "pyav")
        start = (n - max_frames) // 2 if max_frames and n > max_frames else 0
        with av.open(path) as c:
            s = c.streams.video[0]
            s.thread_type = "AUTO"
            if start:  # seek to the keyframe before the window, then decode forward
                rate = float(s.average_rate or 25)
                c.seek((s.start_time or 0) + int(start / rate / s.time_base), stream=s, backward=True)
            for frame in c.decode(s):
                idx = round(float((frame.pts - (s.start_time or 0)) * s.time_base) * float(s.average_rate or 25)) \
                    if frame.pts is not None else len(out)
                if idx < start:
                    continue
                out.append(resize_short(frame.to_ndarray(format="rgb24"), load_size))
                if max_frames and len(out) >= max_frames:
                    break
    if not out:
        raise ValueError("no frames decoded")
    return np.stack(out)


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
                frames = _decode_window(str(path), backend, max_frames, load_size)
                _save_npy(cached, frames)
                pick = np.linspace(0, len(frames) - 1, 5).round().astype(int)
                return (Source(str(path), "video", len(frames), frames.shape[1], frames.shape[2], backend, str(cached)),
                        frames[pick])
            n, (h, w) = _video_info(str(path), backend)
            if n < 1:
                raise ValueError("no frames")
            ends = _decode(str(path), backend, [0, n - 1])
            return Source(str(path), "video", n, h, w, backend), np.stack(ends)
        except Exception as exc:  # noqa: BLE001 - any decoder failure means: try the next backend
            _READERS.pop(str(path), None)
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


# -- decoding -----------------------------------------------------------------------------------------
def read_image(path: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB; grey and 16-bit images are converted, alpha dropped."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("OpenCV cannot decode it")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


_READERS: OrderedDict[str, object] = OrderedDict()  # per process: a few open decord readers


def _decord_reader(path: str):
    import decord

    vr = _READERS.pop(path, None)
    if vr is None:
        decord.logging.set_level(decord.logging.QUIET)
        vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
    _READERS[path] = vr
    while len(_READERS) > 4:
        _READERS.popitem(last=False)
    return vr


def _video_info(path: str, backend: str) -> tuple[int, tuple[int, int]]:
    if backend == "decord":
        vr = _decord_reader(path)
        h, w = vr[0].shape[:2] if len(vr) else (0, 0)
        return len(vr), (h, w)
    import av

    with av.open(path) as c:
        s = c.streams.video[0]
        n = s.frames
        if not n and s.duration and s.average_rate:
            n = round(float(s.duration * s.time_base * s.average_rate))
        if not n and c.duration:
            n = int(c.duration / 1e6 * float(s.average_rate or 25))
        return int(n or 0), (s.codec_context.height, s.codec_context.width)


def _decode(path: str, backend: str, indices: list[int]) -> list[np.ndarray]:
    """Frames ``indices`` (sorted) as (H, W, 3) uint8 RGB."""
    if backend == "decord":
        return list(_decord_reader(path).get_batch(indices).asnumpy())
    return _decode_pyav(path, indices)


def _decode_pyav(path: str, indices: list[int]) -> list[np.ndarray]:
    """PyAV fallback: seek to the keyframe before the first wanted frame, decode forward, and
    number frames from their pts (frame index = round(time * average rate))."""
    import av

    want = sorted(set(indices))
    got: dict[int, np.ndarray] = {}
    with av.open(path) as c:
        s = c.streams.video[0]
        rate = float(s.average_rate or 25)
        start = s.start_time or 0
        c.seek(start + int(want[0] / rate / s.time_base), stream=s, backward=True, any_frame=False)
        last = None
        for frame in c.decode(s):
            idx = round(float((frame.pts - start) * s.time_base) * rate) if frame.pts is not None else 0
            last = frame
            if idx in want:
                got[idx] = frame.to_ndarray(format="rgb24")
            if idx >= want[-1]:
                break
        for i in want:  # past the end of a stream whose count was estimated: repeat the last frame
            if i not in got and last is not None:
                got[i] = last.to_ndarray(format="rgb24")
    if len(got) < len(want):
        raise ValueError(f"cannot decode frames {want[0]}..{want[-1]}")
    return [got[i] for i in indices]


def resize_short(img: np.ndarray, short: int) -> np.ndarray:
    """Resize (H, W, 3) so min(H, W) == short (area filter when shrinking, as the inference path)."""
    h, w = img.shape[:2]
    scale = short / min(h, w)
    size = (max(short, round(w * scale)), max(short, round(h * scale)))
    if size == (w, h):
        return img
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


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
    frames = _decode(source.path, source.backend, indices)
    return np.stack([resize_short(f, load_size) for f in frames])
