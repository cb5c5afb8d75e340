"""Make restoration test material: clean and synthetically degraded versions of clips, losslessly.

    .venv/bin/python docs/models/degrade.py --out /tmp/degraded                 # the eval split's colour clips
    .venv/bin/python docs/models/degrade.py --out /tmp/d --frames 24 --size 320x240 --seed 1 some_clip.mp4

For each clip (default: the colour videos of the eval split in ``MANIFEST.md`` of ``../shared/data``,
or of ``$VIDCOLOR_SHARED_DATA``) the first ``--frames`` frames are scaled with an area filter so they
cover ``--size`` and centre-cropped to it, then written as

* ``OUT/NAME.clean.mkv``: those frames, FFV1 in packed RGB (``bgr0``): decoding gives the same uint8
  RGB back;
* ``OUT/NAME.degraded.mkv``: the same frames through ``vidcolor.degrade.degrade`` (default
  ``Degradation()``: flicker ±10 %, grain 8/255, 20 specks and 2 scratches a frame), also lossless;
* ``OUT/NAME.defects.json``: the spec, the seeds, each frame's flicker gain and every speck and
  scratch (frame, position, look, ``bbox`` and ``rows``: ``vidcolor.degrade.defect_pixels`` rebuilds
  each one's exact pixel set).

Both videos keep the source's frame timing (its pts from the first frame, in the source's time base,
as exact as Matroska's milliseconds allow). The clip's seed is ``seed * 2**32 + crc32(NAME)``, so
clips get different defects and a run is reproducible.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import zlib
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from vidcolor.degrade import Degradation, degrade

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("VIDCOLOR_SHARED_DATA", REPO.parent / "shared" / "data"))
VIDEO_EXTS = {".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v"}
_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|\s*([^|]+?)\s*\|")


def eval_clips(data: Path = DATA) -> list[Path]:
    """The videos of ``data/MANIFEST.md``'s eval split, outside ``videos/bw/`` (the colour clips)."""
    manifest = data / "MANIFEST.md"
    if not manifest.is_file():
        raise SystemExit(f"degrade.py: error: no MANIFEST.md in {data} (set VIDCOLOR_SHARED_DATA)")
    out = []
    for line in manifest.read_text(encoding="utf-8").splitlines():
        m = _ROW.match(line)
        if m and m.group(2).strip().lower() == "eval":
            f = Path(m.group(1))
            if f.parts[0] == "videos" and "bw" not in f.parts and f.suffix.lower() in VIDEO_EXTS:
                out.append(data / f)
    return out


def fit(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale (area filter) so the frame covers ``width`` x ``height``, then crop the centre."""
    h, w = frame.shape[:2]
    scale = max(width / w, height / h)
    sw, sh = max(width, round(w * scale)), max(height, round(h * scale))
    if (sw, sh) != (w, h):
        frame = cv2.resize(frame, (sw, sh), interpolation=cv2.INTER_AREA)
    x0, y0 = (sw - width) // 2, (sh - height) // 2
    return np.ascontiguousarray(frame[y0:y0 + height, x0:x0 + width])


def read_first(path: Path, count: int) -> tuple[list[np.ndarray], list[int], Fraction, Fraction]:
    """The first ``count`` frames (upright RGB), their pts from the first one, the time base and rate."""
    from vidcolor.io.probe import probe
    from vidcolor.io.reader import VideoReader

    meta = probe(path)
    frames, pts = [], []
    with VideoReader(path, meta=meta) as reader:
        for _, p, rgb in reader.frames():
            frames.append(rgb)
            pts.append(p)
            if len(frames) == count:
                break
    return frames, [p - pts[0] for p in pts], Fraction(meta.time_base), Fraction(meta.frame_rate)


def write_lossless(path: Path, frames: np.ndarray, pts: list[int], time_base: Fraction, rate: Fraction) -> None:
    """RGB uint8 frames as FFV1 ``bgr0`` in Matroska, each at its pts (in ``time_base``)."""
    import av

    with av.open(str(path), "w", format="matroska") as out:
        s = out.add_stream("ffv1", rate=rate)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "bgr0"
        s.time_base = s.codec_context.time_base = time_base
        for img, p in zip(frames, pts):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24").reformat(format="bgr0")
            f.pts, f.time_base = p, time_base
            for packet in s.encode(f):
                out.mux(packet)
        for packet in s.encode():
            out.mux(packet)


def make(clip: Path, out: Path, args: argparse.Namespace, spec: Degradation) -> dict:
    frames, pts, time_base, rate = read_first(clip, args.frames)
    if not frames:
        raise SystemExit(f"degrade.py: error: {clip}: no frames")
    clean = np.stack([fit(f, args.width, args.height) for f in frames])
    name = clip.stem
    clip_seed = args.seed * 2**32 + zlib.crc32(name.encode())
    bad, record = degrade(clean, spec, seed=clip_seed)
    write_lossless(out / f"{name}.clean.mkv", clean, pts, time_base, rate)
    write_lossless(out / f"{name}.degraded.mkv", bad, pts, time_base, rate)
    record.update({"clip": str(clip), "script_seed": args.seed, "size": [args.width, args.height],
                   "pts": pts, "time_base": str(time_base),
                   "pixels": "bbox = [x0, y0, w, h]; rows[r] bit i set = pixel (x0 + i, y0 + r) "
                             "(vidcolor.degrade.defect_pixels)"})
    (out / f"{name}.defects.json").write_text(json.dumps(record) + "\n", encoding="utf-8")
    return {"clip": name, "frames": len(clean), "specks": len(record["specks"]),
            "scratches": len(record["scratches"])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("clips", nargs="*", type=Path, metavar="CLIP", help="videos (default: the eval split's colour clips)")
    ap.add_argument("--out", required=True, type=Path, help="folder for NAME.clean.mkv, NAME.degraded.mkv, NAME.defects.json")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--frames", type=int, default=48, help="first N frames of each clip (48)")
    ap.add_argument("--size", default="640x480", help="WxH (640x480)")
    args = ap.parse_args(argv)
    m = re.fullmatch(r"(\d+)x(\d+)", args.size)
    if not m or min(int(m.group(1)), int(m.group(2))) < 3:
        ap.error(f"--size must be WxH with both at least 3, got {args.size!r}")
    if args.frames < 1 or args.seed < 0:
        ap.error("--frames must be >= 1 and --seed >= 0")
    args.width, args.height = int(m.group(1)), int(m.group(2))
    clips = args.clips or eval_clips()
    missing = [str(c) for c in clips if not c.is_file()]
    if missing:
        ap.error(f"no such file: {', '.join(missing)}")
    args.out.mkdir(parents=True, exist_ok=True)
    spec = Degradation()
    for clip in clips:
        print(json.dumps(make(clip, args.out, args, spec)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
