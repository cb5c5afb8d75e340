"""vidcolor benchmark: what this machine does per second, and how much memory it takes.

Every case runs in its own subprocess so its peak RSS is its own (``os.wait4`` rusage).
Inputs are made here: an 854x480 30 fps clip with audio, panning and zooming over a real
photograph (Kodak, from ../shared/data when present), 2 s and 20 s long, so "memory flat with
length" is measured on the same content at 1x and 10x. Real clips from ../shared/data are added
when present. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VIDCOLOR_SHARED_DATA", REPO.parent / "shared" / "data"))


def make_bench_clip(path: Path, seconds: float, width: int = 854, height: int = 480, rate: int = 30) -> Path:
    import av
    import cv2

    photo = SHARED / "images/color_kodak24"
    pics = sorted(photo.glob("*.png")) if photo.is_dir() else []
    if pics:
        img = cv2.cvtColor(cv2.imread(str(pics[0])), cv2.COLOR_BGR2RGB)
    else:  # no shared data: a smooth synthetic picture
        yy, xx = np.mgrid[0:1024, 0:1536].astype(np.float32)
        img = (np.stack([np.sin(xx / 90) * 0.5 + 0.5, np.cos(yy / 70) * 0.5 + 0.5, (xx + yy) / 2560], -1) * 255)
        img = img.astype(np.uint8)
    img = cv2.resize(img, (int(width * 1.6), int(height * 1.6)))
    c = av.open(str(path), "w")
    v = c.add_stream("libx264", rate=rate, options={"crf": "20", "preset": "veryfast"})
    v.width, v.height, v.pix_fmt = width, height, "yuv420p"
    a = c.add_stream("aac", rate=48000)
    a.layout = "stereo"
    n = int(seconds * rate)
    H, W = img.shape[:2]
    for i in range(n):
        t = i / max(n - 1, 1)
        zoom = 1.0 + 0.25 * np.sin(2 * np.pi * i / 150)
        cw, ch = int(width * 1.25 / zoom), int(height * 1.25 / zoom)
        x0 = int((W - cw) * (0.5 + 0.45 * np.sin(2 * np.pi * i / 240)))
        y0 = int((H - ch) * (0.5 + 0.45 * np.cos(2 * np.pi * i / 310)))
        crop = cv2.resize(img[y0:y0 + ch, x0:x0 + cw], (width, height), interpolation=cv2.INTER_AREA)
        f = av.VideoFrame.from_ndarray(crop, format="rgb24")
        f.pts = i
        for p in v.encode(f):
            c.mux(p)
    for p in v.encode():
        c.mux(p)
    samples = int(seconds * 48000)
    tone = (0.1 * np.sin(2 * np.pi * 220 * np.arange(samples) / 48000)).astype(np.float32)
    for k in range(0, samples, 1024):
        af = av.AudioFrame.from_ndarray(np.stack([tone[k:k + 1024]] * 2), format="fltp", layout="stereo")
        af.sample_rate, af.pts = 48000, k
        for p in a.encode(af):
            c.mux(p)
    for p in a.encode():
        c.mux(p)
    c.close()
    return path


# -- cases, each run in a child process -------------------------------------------------------
def case_decode(path: str) -> dict:
    from vidcolor.io.reader import VideoReader

    t = time.perf_counter()
    n = 0
    with VideoReader(path) as r:
        for c in r.chunks(8):
            n += len(c)
    return {"frames": n, "seconds": time.perf_counter() - t}


def case_transcode(path: str, out: str) -> dict:
    from vidcolor.io.probe import probe
    from vidcolor.io.reader import VideoReader
    from vidcolor.io.writer import VideoWriter

    t = time.perf_counter()
    meta = probe(path)
    n = 0
    with VideoReader(path, meta=meta) as r, VideoWriter(out, meta, streams_from=path) as w:
        for c in r.chunks(8):
            w.write(c.frames, c.pts)
            n += len(c)
    return {"frames": n, "seconds": time.perf_counter() - t}


def case_run(path: str, out: str, style: str, extra: str = "{}") -> dict:
    from vidcolor.pipelines.run import run

    kw = json.loads(extra)
    t = time.perf_counter()
    rep = run(path, out, style, overwrite=True, **kw)
    return {"frames": rep.frames, "seconds": time.perf_counter() - t}


CASES = {"decode": case_decode, "transcode": case_transcode, "run": case_run}


def child_main(argv: list[str]) -> None:
    name, *args = argv
    res = CASES[name](*args)
    print("RESULT " + json.dumps(res))


def measure(name: str, *args: str) -> dict:
    """Run a case in a fresh interpreter; return its result plus fps and peak RSS (MiB)."""
    proc = subprocess.Popen([sys.executable, __file__, "--child", name, *args], stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"bench case {name} {args} failed with code {proc.returncode}")
    res = json.loads([line for line in out.splitlines() if line.startswith("RESULT ")][-1][7:])
    res["fps"] = res["frames"] / res["seconds"]
    res["peak_rss_mib"] = usage.ru_maxrss / 1024  # Linux: KiB
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench.json")
    ap.add_argument("--quick", action="store_true", help="shorter clips (2 s and 20 s instead of 5 s and 50 s)")
    ap.add_argument("--styles", default="noir,sepia", help="comma-separated styles to time end to end")
    args = ap.parse_args()
    short_s = 2.0 if args.quick else 5.0
    results: dict = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                                 "python": platform.python_version()}, "cases": {}}
    with tempfile.TemporaryDirectory(prefix="vidcolor-bench-") as tmp:
        tmp_p = Path(tmp)
        short = make_bench_clip(tmp_p / "short.mp4", short_s)
        long = make_bench_clip(tmp_p / "long.mp4", short_s * 10)
        rows = []

        def record(key: str, res: dict) -> None:
            results["cases"][key] = res
            rows.append((key, res["frames"], res["fps"], res["peak_rss_mib"]))
            print(f"{key:<40} {res['frames']:>6} frames {res['fps']:>8.1f} fps {res['peak_rss_mib']:>8.0f} MiB",
                  flush=True)

        record("decode 854x480", measure("decode", str(long)))
        record("decode+encode 854x480 (no stage)", measure("transcode", str(long), str(tmp_p / "t.mp4")))
        for style in [s for s in args.styles.split(",") if s]:
            for label, clip in (("short", short), ("long", long)):
                record(f"run {style} 854x480 {label}", measure("run", str(clip), str(tmp_p / f"{style}.mp4"), style))
        ratios = {}
        for style in [s for s in args.styles.split(",") if s]:
            s, l = results["cases"][f"run {style} 854x480 short"], results["cases"][f"run {style} 854x480 long"]
            ratios[f"{style}: peak RSS long/short (10x frames)"] = l["peak_rss_mib"] / s["peak_rss_mib"]
        results["ratios"] = ratios
        for k, v in ratios.items():
            print(f"{k:<50} {v:.3f}")
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
    else:
        main()
