"""Keyframe files: colour images that fix the colour of single frames of a film, and the grey frames
``vidcolor keyframes`` writes for a colourist to paint.

A keyframe source is either

- a folder of images named by frame number (``000120.png``, any number of digits) or by timecode
  ``HH-MM-SS.mmm`` / ``HH-MM-SS`` (``00-01-23.040.png``); extensions .png .jpg .jpeg .tif .tiff .bmp
  .webp in any case. A ``keyframes.toml`` in the folder (same format as below) gives the frames of
  the files it names; the other images are read by their names. Hidden files, files of other
  extensions and ``contact-sheet*`` (what ``vidcolor keyframes`` writes) are ignored; any other
  image whose name does not parse is an error.
- a TOML file whose ``[keyframes]`` table maps image files (relative to the TOML's folder) to a
  frame number or a timecode ``"HH:MM:SS.mmm"`` (colons there).

A timecode is a presentation time from the start of the video stream; it names the frame whose
presentation time is nearest: ``round(t * frame_rate)`` for a constant frame rate, the nearest of
the frames' own timestamps (read from the packet headers) for a variable one.
"""

from __future__ import annotations

import bisect
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from vidcolor.errors import InputError
from vidcolor.guides.contact_sheet import PREFIX as SHEET_PREFIX
from vidcolor.guides.contact_sheet import ContactSheet
from vidcolor.io.probe import VideoMeta

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
MAP_NAME = "keyframes.toml"
ACCEPTED = ("frame numbers (000120.png), timecodes HH-MM-SS.mmm or HH-MM-SS (00-01-23.040.png), "
            f"or a {MAP_NAME} naming the file")
# An estimated frame count (no count in the header) may be a frame or two short of the real one.
ESTIMATE_SLACK = 2

_FRAME = re.compile(r"(-?)(\d+)")
_TIME_NAME = re.compile(r"(\d{2,})-(\d{2})-(\d{2})(?:\.(\d{1,3}))?")
_TIME_TOML = re.compile(r"(\d{1,}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?")


@dataclass(frozen=True)
class Keyframe:
    """A colour image fixing the colour of frame ``frame`` (0 = the film's first frame)."""

    frame: int
    path: Path


def frame_name(frame: int) -> str:
    """The file stem of frame ``frame``: ``000120``."""
    if frame < 0:
        raise ValueError(f"negative frame number {frame}")
    return f"{frame:06d}"


def timecode_name(seconds: float) -> str:
    """The file stem of a presentation time: ``83.04`` -> ``00-01-23.040`` (rounded to 1 ms)."""
    ms = round(Fraction(seconds) * 1000)
    if ms < 0:
        raise ValueError(f"negative time {seconds}")
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}-{m:02d}-{s:02d}.{ms:03d}"


def _timecode(match: re.Match[str]) -> Fraction | None:
    h, m, s, frac = match.groups()
    if int(m) >= 60 or int(s) >= 60:
        return None
    return int(h) * 3600 + int(m) * 60 + int(s) + (Fraction(int(frac), 10 ** len(frac)) if frac else 0)


def parse_name(stem: str) -> int | Fraction | None:
    """A file stem as a frame number (``int``) or a timecode in seconds (``Fraction``); None when it is
    neither. A negative number is an ``InputError``."""
    if m := _FRAME.fullmatch(stem):
        if m.group(1):
            raise InputError(f"negative frame number {stem}")
        return int(m.group(2))
    if m := _TIME_NAME.fullmatch(stem):
        return _timecode(m)
    return None


def frame_times(meta: VideoMeta) -> list[float]:
    """Every frame's presentation time in seconds from the stream's start, in order, from the packet
    headers (no decoding)."""
    import av

    from vidcolor.io.probe import open_input

    with open_input(meta.path) as container:
        stream = container.streams.video[0]
        try:
            pts = sorted(p.pts for p in container.demux(stream) if p.pts is not None and p.size)
        except av.error.FFmpegError as exc:
            raise InputError(f"{meta.path}: cannot read the frame timestamps: {exc}") from None
    return [float((p - meta.start_pts) * meta.time_base) for p in pts]


class _Clock:
    """Seconds <-> frame of one film: the frame rate for CFR, the frames' timestamps for VFR (read
    once, on first use)."""

    def __init__(self, meta: VideoMeta) -> None:
        self.meta = meta
        self._times: list[float] | None = None

    def times(self) -> list[float] | None:
        if self.meta.vfr and self._times is None:
            self._times = frame_times(self.meta)
        return self._times or None

    def frame(self, seconds: Fraction) -> int:
        times = self.times()
        if times is None:
            return round(seconds * self.meta.frame_rate)
        i = bisect.bisect_left(times, float(seconds))
        near = [k for k in (i - 1, i) if 0 <= k < len(times)]
        return min(near, key=lambda k: (abs(times[k] - float(seconds)), k)) if near else 0

    def seconds(self, frame: int) -> float:
        times = self.times()
        if times is not None and frame < len(times):
            return times[frame]
        return float(frame / self.meta.frame_rate)


def _check_frame(frame: int, path: Path, meta: VideoMeta, what: str) -> None:
    count = meta.frame_count
    if not count:
        return
    last = count - 1 + (0 if meta.frame_count_exact else ESTIMATE_SLACK)
    if frame > last:
        known = f"frames 0 to {count - 1}" + ("" if meta.frame_count_exact else " (estimated)")
        raise InputError(f"{path}: {what} is beyond the end of the film ({known})")


def _map_entries(toml_path: Path) -> dict[Path, int | Fraction]:
    """``file -> frame or seconds`` from a TOML map's ``[keyframes]`` table."""
    try:
        data = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{toml_path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{toml_path}: not valid TOML: {exc}") from None
    table = data.get("keyframes")
    if not isinstance(table, dict):
        raise InputError(f'{toml_path}: needs a [keyframes] table of "image.png" = frame or "HH:MM:SS.mmm"')
    out: dict[Path, int | Fraction] = {}
    for name, value in table.items():
        where = f"{toml_path}: {name!r}"
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 0:
                raise InputError(f"{where}: negative frame number {value}")
            at: int | Fraction | None = value
        elif isinstance(value, str) and (m := _TIME_TOML.fullmatch(value.strip())):
            at = _timecode(m)
        else:
            at = None
        if at is None:
            raise InputError(f'{where}: expected a frame number or a timecode "HH:MM:SS.mmm", got {value!r}')
        path = (toml_path.parent / name).resolve()
        if not path.is_file():
            raise InputError(f"{where}: no such file {path}")
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            raise InputError(f"{where}: not an image ({', '.join(IMAGE_EXTENSIONS)})")
        out[path] = at
    return out


def _is_candidate(path: Path) -> bool:
    """A file of a keyframe folder that is read as a keyframe (or must parse as one)."""
    return (path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS
            and not path.name.lower().startswith(SHEET_PREFIX))


def _folder_entries(folder: Path) -> dict[Path, int | Fraction]:
    toml_path = folder / MAP_NAME
    entries = _map_entries(toml_path) if toml_path.is_file() else {}
    for path in sorted(folder.iterdir()):
        if not _is_candidate(path) or path.resolve() in entries:
            continue
        at = parse_name(path.stem)
        if at is None:
            raise InputError(f"{path}: not a keyframe name; expected {ACCEPTED}")
        entries[path] = at
    return entries


def load_keyframes(source: str | Path, meta: VideoMeta) -> list[Keyframe]:
    """The keyframes of ``source`` (a folder or a TOML map) for the film of ``meta``, sorted by frame.
    Every image is decoded once to check it; any problem is a one-line ``InputError`` naming the file."""
    src = Path(source)
    if src.is_dir():
        entries = _folder_entries(src)
    elif src.is_file() and src.suffix.lower() == ".toml":
        entries = _map_entries(src)
    elif src.exists():
        raise InputError(f"{src}: keyframes must be a folder of images or a .toml file")
    else:
        raise InputError(f"{src}: no such keyframe folder or file")
    if not entries:
        raise InputError(f"no keyframe images in {src} (expected {ACCEPTED})")
    clock = _Clock(meta)
    by_frame: dict[int, Path] = {}
    for path, at in entries.items():
        frame = at if isinstance(at, int) else clock.frame(at)
        what = f"frame {at}" if isinstance(at, int) else f"timecode {float(at):.3f} s (frame {frame})"
        _check_frame(frame, path, meta, what)
        if frame in by_frame:
            raise InputError(f"{path} and {by_frame[frame]} are both keyframes of frame {frame}")
        read_keyframe(path)
        by_frame[frame] = path
    return [Keyframe(f, by_frame[f]) for f in sorted(by_frame)]


def read_keyframe(path: Path) -> np.ndarray:
    """A keyframe image as ``(H, W, 3)`` uint8 RGB: 16-bit and float images scaled to 8 bits, grey
    expanded to three channels, alpha dropped. A missing or corrupt file is an ``InputError``."""
    import cv2

    try:
        data = np.fromfile(str(path), np.uint8)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error:
        img = None
    if img is None or img.size == 0:
        raise InputError(f"{path}: not a readable image (corrupt, or a format OpenCV cannot decode)")
    if img.dtype == np.uint16:
        img = ((img.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif img.dtype.kind == "f":
        img = (np.clip(np.nan_to_num(img), 0, 1) * 255 + 0.5).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise InputError(f"{path}: unsupported sample type {img.dtype} (use 8- or 16-bit images)")
    if img.ndim == 2 or img.shape[2] == 1:
        return np.ascontiguousarray(np.repeat(img.reshape(img.shape[0], img.shape[1], 1), 3, axis=2))
    if img.shape[2] not in (3, 4):
        raise InputError(f"{path}: {img.shape[2]} colour channels (use RGB, RGBA or grey images)")
    code = cv2.COLOR_BGRA2RGB if img.shape[2] == 4 else cv2.COLOR_BGR2RGB
    return np.ascontiguousarray(cv2.cvtColor(img, code))


def _encode(path: Path, img: np.ndarray) -> None:
    """Write ``img`` (grey or BGR) to ``path``, encoded as ``path.stem``'s extension says
    (``000120.png.part`` holds a PNG)."""
    import cv2

    ext = Path(path.stem).suffix if path.suffix == ".part" else path.suffix
    params = [cv2.IMWRITE_JPEG_QUALITY, 90] if ext.lower() in (".jpg", ".jpeg") else []
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(img), params)
    if not ok:
        raise InputError(f"{path}: OpenCV could not encode the image")
    path.write_bytes(buf.tobytes())


def existing_keyframes(out_dir: Path) -> list[Path]:
    """Image files in ``out_dir`` that a keyframe folder would read (what rerunning could destroy)."""
    if not out_dir.is_dir():
        return []
    named = set(_map_entries(out_dir / MAP_NAME)) if (out_dir / MAP_NAME).is_file() else set()
    return sorted(p for p in out_dir.iterdir() if _is_candidate(p) and (
        p.resolve() in named or parse_name(p.stem.lstrip("-")) is not None))


def _prepare(out_dir: Path, overwrite: bool) -> bool:
    """Check ``out_dir`` for keyframe images a run would replace and create it; True if it was created."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a folder")
    found = [] if overwrite else existing_keyframes(out_dir)
    if found:
        more = f" and {len(found) - 5} more" if len(found) > 5 else ""
        shown = ", ".join(p.name for p in found[:5]) + more
        raise InputError(f"{out_dir} already holds keyframe images ({shown}); they may be coloured already: "
                         "choose another folder, or replace them with --force")
    try:
        if out_dir.is_dir():
            return False
        out_dir.mkdir(parents=True)
        return True
    except OSError as exc:
        raise InputError(f"{out_dir}: cannot create the folder: {exc.strerror or exc}") from None


def extract_keyframes(path: str | Path, meta: VideoMeta, out_dir: str | Path, every: float | None = None,
                      contact_sheet: bool = True, render_size: int = 160, overwrite: bool = False,
                      progress: Callable[[int, int | None], None] | None = None,
                      flow: str = "auto", allow_truncated: bool = False) -> list[Path]:
    """Decode the film once and write the first frame of every shot as ``out_dir/NNNNNN.png`` (the
    decoded luma, grey), with ``every`` also a frame every ``every`` seconds of a shot (the first
    frame at or past each multiple of ``every`` after the shot's start, none closer than
    ``every / 2`` to a shot start), and a contact sheet of them. Existing keyframe images in
    ``out_dir`` are an ``InputError`` unless ``overwrite`` (then only the files written are
    replaced). Every file is written as ``NAME.part`` and renamed once the whole film has decoded:
    a failure or Ctrl-C leaves the folder as it was. ``allow_truncated``: use what decodes of a
    damaged film (the reader's option). Returns the written paths: the keyframes in
    frame order, then the contact sheet(s)."""
    if every is not None and not every > 0:
        raise InputError(f"--every must be a positive number of seconds, got {every}")
    out = Path(out_dir)
    created = _prepare(out, overwrite)
    clock = _Clock(meta)
    written: list[Path] = []  # final names; each is written as NAME.part until the whole film is done

    def save(name: str, img: np.ndarray) -> None:
        written.append(out / name)
        _encode(out / f"{name}.part", img)

    sheet = ContactSheet(meta, save) if contact_sheet else None

    def write(frame: int, grey: np.ndarray) -> None:
        save(f"{frame_name(frame)}.png", grey)
        if sheet is not None:
            sheet.add(grey, f"{frame_name(frame)}  {timecode_name(clock.seconds(frame)).replace('-', ':')}")

    done = False

    try:
        _scan(path, meta, render_size, flow, every, allow_truncated, clock, write, progress)
        if sheet is not None:
            sheet.flush()
        for p in written:
            os.replace(p.with_name(p.name + ".part"), p)
        done = True
    finally:  # failed or interrupted: no .part left, and the folder as it was before
        for p in written:
            p.with_name(p.name + ".part").unlink(missing_ok=True)
        if created and not done and not any(out.iterdir()):
            out.rmdir()
    return [p for p in written if not p.name.startswith(SHEET_PREFIX)] + \
        [p for p in written if p.name.startswith(SHEET_PREFIX)]


def _scan(path: str | Path, meta: VideoMeta, render_size: int, flow: str, every: float | None,
          allow_truncated: bool, clock: _Clock, write: Callable[[int, np.ndarray], None],
          progress: Callable[[int, int | None], None] | None) -> None:
    """The decode of ``extract_keyframes``: ``write(frame, grey)`` for each frame chosen, in order."""
    from vidcolor.guides.shots import CutDetector, scan_lightness

    cuts = CutDetector(flow=flow)
    pending: list[tuple[int, float, np.ndarray]] = []  # periodic frames waiting to be every/2 from a cut
    next_at, half = 0.0, (every or 0.0) / 2
    done = 0
    for index, L_small, grey in scan_lightness(path, meta, render_size, allow_truncated=allow_truncated):
        for k, starts in enumerate(cuts.feed(L_small, index)):
            frame, t = index + k, clock.seconds(index + k)
            image = grey[k, :, :, 0]
            if pending:  # far enough from any cut now; those too close to this cut are dropped
                ready = [p for p in pending if t - p[1] >= half]
                pending = [] if starts else [p for p in pending if t - p[1] < half]
                for p in ready:
                    write(p[0], p[2])
            if starts:
                write(frame, image)
                next_at = t + (every or 0.0)
            elif every is not None and t >= next_at - 1e-6:
                pending.append((frame, t, image.copy()))
                while next_at <= t + 1e-6:
                    next_at += every
        done += len(grey)
        if progress is not None:
            progress(done, meta.frame_count)
    for p in pending:  # the film's end is no shot start
        write(p[0], p[2])
