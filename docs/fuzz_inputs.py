"""Fuzz ``vidcolor run`` with damaged inputs and count how each one ends.

Makes ``--count`` seeded mutants of small clips (mp4, mov, mkv with H.264 and AAC, webm with VP8 and
Opus, made here with PyAV, and a real Matroska clip from the shared data when it is there): cut at
a random offset, a block of zeros written over, or bits flipped. Each mutant goes through
``vidcolor run --style noir --json`` in a process of its own, once as it is and once
with ``--allow-truncated``, and lands in one column:

  full       exit 0, no warning, as many frames as the mutant decodes
  warned     exit 0 with a warning
  refused    exit 2 with a one-line error
  failed     exit 1 with a one-line error
  traceback  an exception escaped or a traceback was printed            (must be 0)
  silent     exit 0, no warning, fewer frames than the mutant decodes   (must be 0)
  hang       no end within two minutes                                  (must be 0)

"Decodes" is measured apart from vidcolor: every packet through a single-threaded decoder, the ones
that fail skipped. ``short`` counts the ``full`` runs shorter than the undamaged clip (damage the
container cannot tell: the lost frames are gone from the data and from its index alike).

    python docs/fuzz_inputs.py --count 160 --seed 0
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parents[1]
REAL_CLIP = "videos/intel_asl_eat.mkv"  # 47 frames, 640x480 H.264 in Matroska
COLUMNS = ("full", "warned", "refused", "failed", "traceback", "silent", "hang")


def make_clip(path: Path, codec: str, audio_codec: str | None, frames: int = 24, size: tuple[int, int] = (96, 64),
              rate: int = 24) -> Path:
    """A small clip with moving content, and a tone as long as the video when ``audio_codec``."""
    fmt = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}[path.suffix]
    w, h = size
    with av.open(str(path), "w", format=fmt) as c:
        v = c.add_stream(codec, rate=rate)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        a = c.add_stream(audio_codec, rate=48000) if audio_codec else None
        if a is not None:
            a.layout = "stereo"
        yy, xx = np.mgrid[0:h, 0:w]
        for i in range(frames):
            img = np.stack([(xx * 255 // w + 4 * i) % 256, (yy * 255 // h + 2 * i) % 256,
                            np.full_like(xx, 128)], -1).astype(np.uint8)
            img[(i * 3) % (h - 16):(i * 3) % (h - 16) + 16, (i * 5) % (w - 16):(i * 5) % (w - 16) + 16] = 240
            for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
        if a is not None:
            n = frames * 48000 // rate
            t = np.arange(n) / 48000
            tone = np.repeat((0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None], 2, 0)
            for k in range(0, n, 960):
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, k:k + 960]), format="fltp",
                                                layout="stereo")
                af.sample_rate, af.pts = 48000, k
                for p in a.encode(af):
                    c.mux(p)
            for p in a.encode():
                c.mux(p)
    return path


def base_clips(folder: Path, shared_data: Path | None) -> list[Path]:
    clips = [make_clip(folder / "base.mp4", "libx264", "aac"), make_clip(folder / "base.mov", "libx264", "aac"),
             make_clip(folder / "base.mkv", "libx264", "aac"), make_clip(folder / "base.webm", "libvpx", "libopus")]
    if shared_data is not None and (shared_data / REAL_CLIP).is_file():
        clips.append(Path(shutil.copy(shared_data / REAL_CLIP, folder / "real.mkv")))
    return clips


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One seeded mutation: ``(description, damaged bytes)``."""
    kind = rng.choice(("truncate", "zero", "flip"))
    b = bytearray(data)
    if kind == "truncate":
        at = rng.randrange(len(b) // 20, len(b) * 19 // 20)
        return f"truncate@{at}", bytes(b[:at])
    if kind == "zero":
        at, n = rng.randrange(0, len(b)), rng.choice((16, 64, 256, 1024, 4096))
        b[at:at + n] = bytes(len(b[at:at + n]))
        return f"zero{n}@{at}", bytes(b)
    spots = sorted(rng.randrange(0, len(b)) for _ in range(rng.randint(1, 16)))
    for at in spots:
        b[at] ^= 1 << rng.randrange(8)
    return f"flip{len(spots)}@{spots[0]}", bytes(b)


def decodable_frames(path: Path) -> int:
    """Frames a single-threaded decoder gets from ``path``, skipping packets that fail (0 if unreadable)."""
    n = 0
    try:
        with av.open(str(path), metadata_errors="ignore") as c:
            if not c.streams.video:
                return 0
            s = c.streams.video[0]
            try:
                for packet in c.demux(s):
                    try:
                        n += len(s.decode(packet))
                    except av.error.FFmpegError:
                        continue
            except av.error.FFmpegError:
                n += len(s.decode(None))
    except (av.error.FFmpegError, OSError, UnicodeDecodeError):
        pass
    return n


def output_frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for p in c.demux(c.streams.video[0]) if p.size)


@dataclass
class Outcome:
    column: str
    short: bool
    message: str


def run_one(src: Path, out: Path, clip_frames: int, decodable: int, allow_truncated: bool,
            timeout: float = 120.0) -> Outcome:
    """One ``vidcolor run`` in a process of its own, as a user runs it; a run that never ends is a ``hang``.
    (PyAV's logging stays off, its default: routed into Python's logging, a frame-threaded decoder's
    worker logging the damage waits for the GIL that the thread freeing that decoder holds.)"""
    args = [sys.executable, "-c", "from vidcolor.cli import main; main()", "run", str(src), "--style", "noir",
            "-o", str(out), "--overwrite", "--json", "--no-resumable"]
    try:
        r = subprocess.run(args + (["--allow-truncated"] if allow_truncated else []), capture_output=True,
                           text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return Outcome("hang", False, f"no end after {timeout:.0f} s")
    err, exit_code = r.stderr.strip(), r.returncode
    if "Traceback" in err or "Traceback" in r.stdout or exit_code < 0:
        return Outcome("traceback", False, err[-300:])
    if exit_code:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        one_line = len(lines) == 1 and lines[0].startswith("vidcolor: error: ")
        column = {2: "refused", 1: "failed"}.get(exit_code, "traceback")
        return Outcome(column if one_line else "traceback", False, err)
    report = json.loads(r.stdout)
    frames = output_frames(out)
    out.unlink()
    if report["warnings"]:
        return Outcome("warned", frames < clip_frames, "; ".join(report["warnings"]))
    if frames < decodable:
        return Outcome("silent", True, f"{frames} frames written, {decodable} decode")
    return Outcome("full", frames < clip_frames, f"{frames} frames")


def fuzz(count: int, seed: int, folder: Path, shared_data: Path | None = None,
         log=None) -> dict[str, dict[str, Counter]]:
    """Run ``count`` mutants; returns ``{mode: {"columns": Counter, "short": Counter}}`` for the modes
    ``default`` and ``allow-truncated``."""
    rng = random.Random(seed)
    clips = base_clips(folder, shared_data)
    frames = {c: output_frames(c) for c in clips}
    results = {mode: {"columns": Counter(), "short": Counter()} for mode in ("default", "allow-truncated")}
    for i in range(count):
        base = clips[i % len(clips)]
        what, data = mutate(base.read_bytes(), rng)
        src = folder / f"m{i:03d}{base.suffix}"
        src.write_bytes(data)
        decodable = decodable_frames(src)
        for mode in results:
            o = run_one(src, folder / "out.mkv", frames[base], decodable, mode == "allow-truncated")
            results[mode]["columns"][o.column] += 1
            results[mode]["short"][o.column] += o.short
            if log is not None:
                log(f"{src.name:10s} {what:18s} {mode:15s} {o.column:9s} {o.message[:150]}")
        src.unlink()
    return results


def table(results: dict[str, dict[str, Counter]]) -> str:
    rows = [f"| mode | {' | '.join(COLUMNS)} | full or warned, shorter than the clip |",
            "|---" * (len(COLUMNS) + 2) + "|"]
    for mode, r in results.items():
        cols = r["columns"]
        rows.append(f"| {mode} | {' | '.join(str(cols[c]) for c in COLUMNS)} | "
                    f"{r['short']['full'] + r['short']['warned']} |")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=160, help="mutants [160]")
    ap.add_argument("--seed", type=int, default=0, help="random seed [0]")
    ap.add_argument("--verbose", action="store_true", help="one line per run")
    args = ap.parse_args()
    shared = Path(os.environ.get("VIDCOLOR_SHARED_DATA", REPO.parent / "shared" / "data"))
    with tempfile.TemporaryDirectory(prefix="vidcolor-fuzz-") as tmp:
        results = fuzz(args.count, args.seed, Path(tmp), shared if shared.is_dir() else None,
                       log=(lambda line: print(line, file=sys.stderr)) if args.verbose else None)
    print(table(results))
    bad = sum(r["columns"]["traceback"] + r["columns"]["silent"] + r["columns"]["hang"] for r in results.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
