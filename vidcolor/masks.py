"""Region masks: where a style (or one stage) applies, frame by frame (``--mask FILE``, ``mask = "FILE"``).

A mask gives each frame a weight map ``m`` of shape (H, W), float32 in [0, 1], at the size of the
frames it masks; ``vidcolor.stages.masked.Masked`` blends ``m * styled + (1 - m) * input``. Three
kinds of file, told apart by their extension:

- an image (``.png``, also ``.jpg``, ``.bmp``, ``.tif``, ``.webp``): its alpha channel when it has
  one, else its grey level (of a colour image: its luma), scaled to 0..1 and resized to the frame;
- a video (any other extension): frame i masks frame i, the last frame holds for the frames after
  it; its luma (full range) is the weight, with values up to 4/255 counted as 0 and from 251/255
  as 1, so compression noise around black and white does not leak;
- a TOML file of regions (``.toml``)::

      feather = 8              # px, the soft edge, inside the region (default 0: a hard edge)
      invert = false           # true: the style applies outside the regions
      units = "px"             # or "fraction": coordinates as fractions of the frame's width and height
      [[region]]
      frames = [0, 120]        # first and last frame, both included (default: every frame)
      rect = [40, 30, 200, 100]            # x, y, width, height
      [[region]]
      polygon = [[10, 10], [300, 20], [150, 200]]

  or, instead of regions, ``source = "FILE"`` (an image or a video, relative to the TOML file)
  with ``feather`` and ``invert`` applied to it.

Coordinates are those of the displayed (upright) frame. ``feather`` ramps the weight from the
region's edge inward over that many pixels (distance-based): a pixel of weight 0 stays 0, so a pixel
outside the region is never touched; ``invert`` is applied before the feather. Torch-free.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from vidcolor.errors import InputError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
TOML_KEYS = ("feather", "invert", "region", "source", "units")
REGION_KEYS = ("frames", "polygon", "rect")
VIDEO_NOISE = 4  # of 255: video mask values at most this count as 0, at least 255 minus this as 1


def finish(weight: np.ndarray, feather: float, invert: bool) -> np.ndarray:
    """A weight map after ``invert`` then ``feather`` (px, inward): zeros stay exactly 0."""
    import cv2

    w = 1.0 - weight if invert else weight
    w = np.ascontiguousarray(w, dtype=np.float32)
    if feather > 0 and (w <= 0).any():
        inside = (w > 0).astype(np.uint8)
        dist = cv2.distanceTransform(inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        w = w * np.minimum(dist / np.float32(feather + 1), 1).astype(np.float32)
    return w


def resize(weight: np.ndarray, height: int, width: int) -> np.ndarray:
    import cv2

    if weight.shape == (height, width):
        return weight
    shrink = weight.shape[0] > height and weight.shape[1] > width
    return cv2.resize(weight, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


class MaskSource:
    """Base: ``weights(index, height, width)`` -> (H, W) float32 in [0, 1] for frame ``index``."""

    kind = "mask"

    def __init__(self, path: Path, feather: float = 0.0, invert: bool = False) -> None:
        self.path, self.feather, self.invert = path, float(feather), bool(invert)

    def weights(self, index: int, height: int, width: int) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """Free what reading the mask holds (a video decoder). Default: nothing."""

    def describe(self) -> dict[str, Any]:
        return {"file": str(self.path), "kind": self.kind, "feather": self.feather, "invert": self.invert}


class ImageMask(MaskSource):
    kind = "image"

    def __init__(self, path: Path, feather: float = 0.0, invert: bool = False) -> None:
        import cv2

        super().__init__(path, feather, invert)
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if img is None:
            raise InputError(f"{path}: cannot read the mask image (missing, corrupt or not an image)")
        scale = np.float32(np.iinfo(img.dtype).max if img.dtype.kind in "ui" else 1.0)
        if img.ndim == 3 and img.shape[2] == 4:
            img = img[..., 3]  # alpha
        elif img.ndim == 3:
            img = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2GRAY)
        self.weight = np.clip(img.astype(np.float32) / scale, 0, 1)
        if not finish(self.weight, 0, self.invert).any():
            raise InputError(f"{path}: the mask is empty (every pixel 0{' after invert' if invert else ''})")
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def weights(self, index: int, height: int, width: int) -> np.ndarray:
        key = (height, width)
        if key not in self._cache:
            self._cache = {key: finish(resize(self.weight, height, width), self.feather, self.invert)}
        return self._cache[key]


class VideoMask(MaskSource):
    """A mask video read in order, reopened (seeking) when asked for an earlier frame."""

    kind = "video"

    def __init__(self, path: Path, feather: float = 0.0, invert: bool = False) -> None:
        from vidcolor.io.probe import probe

        super().__init__(path, feather, invert)
        self.meta = probe(path)  # missing, corrupt or audio-only: a one-line VideoError naming the file
        self._reader: Any = None
        self._frames: Any = None
        self._next = 0
        self._last: tuple[int, np.ndarray] | None = None
        if self._luma(0) is None:
            raise InputError(f"{path}: the mask video has no frame")

    def _open(self, start: int) -> None:
        from vidcolor.io.reader import VideoReader

        self.close()
        self._reader = VideoReader(self.path, meta=self.meta, start_frame=start, queue_size=4, grey=True)
        self._frames, self._next = self._reader.frames(), start

    def _luma(self, index: int) -> np.ndarray | None:
        """Luma of frame ``index``, or of the last frame when the video is shorter."""
        if self._last is not None and self._last[0] == index:
            return self._last[1]
        if self._frames is None or index < self._next:
            self._open(min(index, max(0, (self.meta.frame_count or index + 1) - 1)))
            self._last = None
        while self._next <= index:
            item = next(self._frames, None)
            if item is None:  # the end: hold the last frame
                if self._last is None and index > 0:  # opened past the end (a wrong frame count)
                    self._open(0)
                    return self._luma_to_end()
                break
            self._last, self._next = (item[0], item[2][..., 0]), item[0] + 1
        return None if self._last is None else self._last[1]

    def _luma_to_end(self) -> np.ndarray | None:
        for item in self._frames:
            self._last, self._next = (item[0], item[2][..., 0]), item[0] + 1
        return None if self._last is None else self._last[1]

    def weights(self, index: int, height: int, width: int) -> np.ndarray:
        luma = self._luma(index)
        w = luma.astype(np.float32) / np.float32(255)
        w[luma <= VIDEO_NOISE] = 0
        w[luma >= 255 - VIDEO_NOISE] = 1
        return finish(resize(w, height, width), self.feather, self.invert)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        self._reader = self._frames = None


class RegionMask(MaskSource):
    """Rectangles and polygons per frame range, from a TOML file."""

    kind = "regions"

    def __init__(self, path: Path, regions: list[tuple[int, int, str, np.ndarray]], units: str,
                 feather: float = 0.0, invert: bool = False) -> None:
        super().__init__(path, feather, invert)
        self.regions, self.units = regions, units
        self._cache: dict[tuple[Any, ...], np.ndarray] = {}

    def weights(self, index: int, height: int, width: int) -> np.ndarray:
        import cv2

        active = tuple(i for i, (first, last, _, _) in enumerate(self.regions) if first <= index <= last)
        key = (active, height, width)
        if key not in self._cache:
            canvas = np.zeros((height, width), np.uint8)
            scale = np.array([width, height], np.float64) if self.units == "fraction" else np.ones(2)
            for i in active:
                shape, points = self.regions[i][2], np.round(self.regions[i][3] * scale)
                if shape == "rect":  # [x, y, w, h] covers x <= column < x + w, y <= row < y + h
                    (x0, y0), (x1, y1) = np.clip(points, 0, [width, height]).astype(int)
                    canvas[y0:y1, x0:x1] = 1
                else:
                    cv2.fillPoly(canvas, [points.astype(np.int32)], 1)
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = finish(canvas.astype(np.float32), self.feather, self.invert)
        return self._cache[key]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "regions": len(self.regions), "units": self.units}


def _number(where: str, key: str, value: Any, lo: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < lo:
        raise InputError(f"{where}: {key} must be a number >= {lo:g}, got {value!r}")
    return float(value)


def _region(where: str, table: Any) -> tuple[int, int, str, np.ndarray]:
    if not isinstance(table, dict):
        raise InputError(f"{where}: must be a table ([[region]])")
    for key in table:
        if key not in REGION_KEYS:
            hint = "; the file's own keys go before the first [[region]]" if key in TOML_KEYS else ""
            raise InputError(f"{where}: unknown key {key!r} (known: {', '.join(REGION_KEYS)}){hint}")
    first, last = 0, 2**62
    if "frames" in table:
        fr = table["frames"]
        if (not isinstance(fr, list) or len(fr) != 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in fr)
                or fr[0] < 0 or fr[1] < fr[0]):
            raise InputError(f"{where}: frames must be [first, last], two frame numbers with 0 <= first <= last, "
                             f"got {fr!r}")
        first, last = fr
    if ("rect" in table) == ("polygon" in table):
        raise InputError(f"{where}: needs one of the keys 'rect' or 'polygon'")
    if "rect" in table:
        r = table["rect"]
        if not isinstance(r, list) or len(r) != 4:
            raise InputError(f"{where}: rect must be [x, y, width, height], got {r!r}")
        x, y = (_number(where, "rect", v, -np.inf) for v in r[:2])
        w, h = (_number(where, "rect", v) for v in r[2:])
        return first, last, "rect", np.array([[x, y], [x + w, y + h]], np.float64)
    else:
        p = table["polygon"]
        if not isinstance(p, list) or len(p) < 3 or not all(isinstance(q, list) and len(q) == 2 for q in p):
            raise InputError(f"{where}: polygon must be a list of three or more [x, y] points, got {p!r}")
        points = np.array([[_number(where, "polygon", v, -np.inf) for v in q] for q in p], np.float64)
    return first, last, "polygon", points


def read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the mask ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: invalid TOML ({exc})") from None


def _from_toml(path: Path) -> MaskSource:
    data = read_toml(path)
    for key in data:
        if key not in TOML_KEYS:
            raise InputError(f"{path}: unknown key {key!r} (known: {', '.join(TOML_KEYS)})")
    feather = _number(str(path), "feather", data.get("feather", 0))
    invert = data.get("invert", False)
    if not isinstance(invert, bool):
        raise InputError(f"{path}: invert must be true or false, got {invert!r}")
    units = data.get("units", "px")
    if units not in ("px", "fraction"):
        raise InputError(f"{path}: units must be one of px, fraction, got {units!r}")
    if "source" in data:
        source = data["source"]
        if "region" in data or not isinstance(source, str):
            raise InputError(f"{path}: source must be a file name, and cannot go with [[region]] tables")
        if Path(source).suffix.lower() == ".toml":
            raise InputError(f"{path}: source must be an image or a video, got {source!r}")
        return load_mask(source, base_dir=path.parent, feather=feather, invert=invert)
    regions = data.get("region")
    if not isinstance(regions, list) or not regions:
        raise InputError(f"{path}: the mask is empty: a mask TOML needs [[region]] tables or a source")
    parsed = [_region(f"{path}: [[region]] {i}", r) for i, r in enumerate(regions, 1)]
    if units == "fraction" and any((r[3] < 0).any() or (r[3] > 1).any() for r in parsed):
        raise InputError(f"{path}: with units = \"fraction\", coordinates must be in [0, 1]")
    return RegionMask(path, parsed, units, feather, invert)


def resolve(path: str | os.PathLike, base_dir: str | os.PathLike | None = None) -> Path:
    """``path`` made absolute, relative to ``base_dir`` (a style's or a mask TOML's folder) when given."""
    p = Path(os.path.expanduser(os.fspath(path)))
    return (Path(base_dir) / p if base_dir is not None and not p.is_absolute() else p).absolute()


def load_mask(path: str | os.PathLike, base_dir: str | os.PathLike | None = None, *, feather: float = 0.0,
              invert: bool = False) -> MaskSource:
    """The mask in ``path`` (an image, a video or a TOML of regions); a missing, unreadable, corrupt
    or empty mask, or a bad TOML key, is a one-line ``InputError`` naming the file (and the key)."""
    p = resolve(path, base_dir)
    if not p.is_file():
        raise InputError(f"mask file not found: {p}" if not p.exists() else f"{p}: the mask is not a file")
    suffix = p.suffix.lower()
    if suffix == ".toml":
        return _from_toml(p)
    if suffix in IMAGE_EXTENSIONS:
        return ImageMask(p, feather, invert)
    return VideoMask(p, feather, invert)


def check_mask(path: str | os.PathLike, base_dir: str | os.PathLike | None = None) -> None:
    """Load the mask once (raising its ``InputError``) and let it go."""
    load_mask(path, base_dir).close()


def mask_fingerprint(path: str | os.PathLike, base_dir: str | os.PathLike | None = None) -> str:
    """SHA-256 of the mask file's size, first and last MiB (and of a TOML's ``source`` file): a
    changed mask changes a batch's or a resumable run's settings."""
    p = resolve(path, base_dir)
    h = hashlib.sha256()
    files = [p]
    if p.suffix.lower() == ".toml":
        source = read_toml(p).get("source")
        if isinstance(source, str):
            files.append(resolve(source, p.parent))
    for f in files:
        size = f.stat().st_size
        h.update(str(size).encode())
        with open(f, "rb") as fh:
            h.update(fh.read(1 << 20))
            if size > 1 << 20:
                fh.seek(max(1 << 20, size - (1 << 20)))
                h.update(fh.read(1 << 20))
    return "sha256-ends:" + h.hexdigest()[:32]
