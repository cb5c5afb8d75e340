"""Make the README's guided-colorization picture with the tool itself.

A colour clip of the eval split is turned grey (its luma, FFV1); its frame 0 in colour stands for the
keyframe a colourist painted; ``vidcolor run --style colorize`` (the real CLI) colorizes the grey
clip with and without that keyframe. The strip: the keyframe, the grey frame ``--frame``, the
automatic result and the guided result of that frame, and the original colour. Usage:

    .venv/bin/python docs/make_guided_strip.py [--clip sam2_04_coffee.mp4] [--frame 40]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VIDCOLOR_SHARED_DATA", REPO.parent / "shared" / "data"))
sys.path.insert(0, str(REPO / "docs" / "models"))

from evaluate_guided import first_frames  # noqa: E402  (the same clip preparation as the measure)


def label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.rectangle(out, (0, 0), (12 + 11 * len(text), 30), (0, 0, 0), -1)
    cv2.putText(out, text, (6, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def frames_of(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", default="sam2_04_coffee.mp4")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--frame", type=int, default=40)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "images" / "guided_keyframe.png")
    ap.add_argument("--width", type=int, default=320)
    args = ap.parse_args()
    vidcolor = str(Path(sys.executable).with_name("vidcolor"))
    with tempfile.TemporaryDirectory(prefix="vidcolor-strip-") as tmp:
        t = Path(tmp)
        colour = first_frames(SHARED / "videos" / args.clip, args.frames, t / "grey.mkv", pix_fmt="gray")
        (t / "kf").mkdir()
        cv2.imwrite(str(t / "kf" / "000000.png"), cv2.cvtColor(colour[0], cv2.COLOR_RGB2BGR))
        base = [vidcolor, "-q", "run", str(t / "grey.mkv"), "--style", "colorize", "--codec", "ffv1"]
        subprocess.run([*base, "-o", str(t / "auto.mkv")], check=True)
        subprocess.run([*base, "--keyframes", str(t / "kf"), "-o", str(t / "guided.mkv")], check=True)
        grey, auto, guided = (frames_of(t / n)[args.frame] for n in ("grey.mkv", "auto.mkv", "guided.mkv"))
    k = args.frame
    tiles = [(colour[0], "keyframe (frame 0)"), (grey, f"grey frame {k}"), (auto, "automatic"),
             (guided, "--keyframes"), (colour[k], "original")]
    h = round(colour[0].shape[0] * args.width / colour[0].shape[1])
    row = np.concatenate([label(cv2.resize(img, (args.width, h), interpolation=cv2.INTER_AREA), text)
                          for img, text in tiles], axis=1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(row, cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
