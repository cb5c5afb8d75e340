"""Make the README's before/after pictures with the tool itself.

Runs `vidcolor run` (the real CLI) on a clip from ../shared/data, then puts the same frame of the
input and of each output side by side. Usage: .venv/bin/python docs/make_readme_images.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VIDCOLOR_SHARED_DATA", REPO.parent / "shared" / "data"))
sys.path.insert(0, str(REPO))

from vidcolor.io.reader import VideoReader  # noqa: E402


def frame_at(path: Path, index: int) -> np.ndarray:
    with VideoReader(path) as r:
        for i, _, rgb in r.frames():
            if i == index:
                return rgb
    raise SystemExit(f"{path}: has no frame {index}")


def label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.rectangle(out, (0, 0), (12 + 11 * len(text), 30), (0, 0, 0), -1)
    cv2.putText(out, text, (6, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def strip(src: Path, styles: list[tuple[str, list[str]]], index: int, out_png: Path, width: int = 420) -> None:
    tiles = [(frame_at(src, index), "input")]
    with tempfile.TemporaryDirectory() as tmp:
        for style, extra in styles:
            out = Path(tmp) / f"{style}.mp4"
            cmd = [str(REPO / "bin" / "vidcolor"), "-q", "run", str(src), "--style", style, "-o", str(out), *extra]
            subprocess.run(cmd, check=True)
            tiles.append((frame_at(out, index), f"--style {style}"))
    h = int(tiles[0][0].shape[0] * width / tiles[0][0].shape[1])
    row = np.concatenate([label(cv2.resize(t, (width, h), interpolation=cv2.INTER_AREA), text) for t, text in tiles],
                         axis=1)
    cv2.imwrite(str(out_png), cv2.cvtColor(row, cv2.COLOR_RGB2BGR))
    print(f"wrote {out_png}")


if __name__ == "__main__":
    strip(SHARED / "videos/sam2_01_dog.mp4", [("noir", []), ("sepia", [])], 120,
          REPO / "docs/images/grades_sam2_dog.png")
    strip(SHARED / "videos/bw/moviepy_chaplin_bw.mp4", [("colorize-fast", []), ("colorize", [])], 125,
          REPO / "docs/images/colorize_chaplin.png", width=400)
