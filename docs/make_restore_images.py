"""Make the restoration pictures of the README and docs/restoration.md with the tool itself.

    .venv/bin/python docs/make_restore_images.py [--degraded /tmp/degraded] [--clip sam2_04_coffee]
        [--frame 24] [--film moviepy_chaplin_bw.mp4] [--film-frames 240] [--style restore]

Writes three PNGs to ``docs/images/`` (``--out-dir``), each from a ``vidcolor run --style restore``
run of the real CLI into lossless RGB (``docs/models/evaluate_restore.py``'s ``restore``):

* ``restore_degraded.png``: frame ``--frame`` of an eval clip degraded by ``docs/models/degrade.py``
  (made in ``--degraded`` with its defaults when missing): degraded | restored | clean, a crop of
  ``--crop`` px centred where that frame's recorded specks and scratches are densest, shown at
  ``--zoom``;
* ``restore_film.png``: the same for the first ``--film-frames`` frames of a B&W film of the shared
  data, before | after, on frame ``--film-frame`` and on the frame where restore changed the most
  pixels by more than 0.1 in luma (one row each), each crop where restore changed the luma most;
* ``restore_flicker.png``: the flicker index's per-pair values (``FlickerMeter.per_pair``: the
  change of mean luma against the flow-warped previous frame) before and after, on the film and on
  the degraded clip (its clean version for reference).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "docs" / "models"))
sys.path.insert(0, str(REPO / "docs"))

import evaluate_restore as ev  # noqa: E402  (the same runs and measures as the figures)
from make_guided_strip import label  # noqa: E402

from vidcolor.degrade import defect_mask  # noqa: E402


def densest(mask: np.ndarray, cw: int, ch: int) -> tuple[int, int]:
    """Top-left corner of the ``cw`` x ``ch`` window with the largest sum of ``mask``."""
    h, w = mask.shape
    density = cv2.boxFilter(mask.astype(np.float32), -1, (cw, ch), normalize=False,
                            borderType=cv2.BORDER_CONSTANT)
    y, x = np.unravel_index(int(np.argmax(density)), density.shape)
    return int(np.clip(x - cw // 2, 0, w - cw)), int(np.clip(y - ch // 2, 0, h - ch))


def strip(frames: list[tuple[np.ndarray, str]], x: int, y: int, cw: int, ch: int, zoom: int) -> np.ndarray:
    tiles = [label(cv2.resize(f[y:y + ch, x:x + cw], (cw * zoom, ch * zoom), interpolation=cv2.INTER_NEAREST),
                   text) for f, text in frames]
    gap = np.full((ch * zoom, 4, 3), 255, np.uint8)
    return np.concatenate([t for tile in tiles for t in (tile, gap)][:-1], axis=1)


def save(img: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")


def plot(curves: list[tuple[str, list[tuple[str, list[float], str]]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(curves), 1, figsize=(9, 2.6 * len(curves)), dpi=100)
    for ax, (title, lines) in zip(np.atleast_1d(axes), curves):
        for name, values, colour in lines:
            v = np.array([np.nan if x is None else x for x in values], dtype=float)
            ax.plot(np.arange(1, len(v) + 1), 100 * v, color=colour, lw=1.2,
                    label=f"{name} (index {100 * np.nanmean(v):.2f} %)")
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("mean luma change, %")
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8, loc="upper right")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[-1].set_xlabel("frame")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--degraded", type=Path, default=Path(tempfile.gettempdir()) / "degraded")
    ap.add_argument("--clip", default="sam2_04_coffee")
    ap.add_argument("--frame", type=int, default=24)
    ap.add_argument("--film", default="moviepy_chaplin_bw.mp4")
    ap.add_argument("--film-frames", type=int, default=240)
    ap.add_argument("--film-frame", type=int, default=120, help="frame of the film to show (120)")
    ap.add_argument("--style", default="restore")
    ap.add_argument("--crop", default="240x180", help="WxH of the crops (240x180)")
    ap.add_argument("--zoom", type=int, default=2)
    ap.add_argument("--out-dir", type=Path, default=REPO / "docs" / "images")
    args = ap.parse_args()
    m = re.fullmatch(r"(\d+)x(\d+)", args.crop)
    if not m or args.zoom < 1 or args.film_frames < 2:
        ap.error("--crop must be WxH, --zoom >= 1 and --film-frames >= 2")
    cw, ch = int(m.group(1)), int(m.group(2))
    film = ev.DATA / "videos" / "bw" / args.film
    if not film.is_file():
        ap.error(f"no such film: {film}")
    if not (args.degraded / f"{args.clip}.defects.json").is_file():
        print(f"making test material in {args.degraded}", file=sys.stderr)
        ev.degrade_script.main(["--out", str(args.degraded)])
    with tempfile.TemporaryDirectory(prefix="vidcolor-restore-img-") as tmp:
        t = Path(tmp)
        # (a) a degraded eval clip
        clean, bad = (ev.decode(args.degraded / f"{args.clip}.{k}.mkv") for k in ("clean", "degraded"))
        ev.restore(args.degraded / f"{args.clip}.degraded.mkv", t / "clip.mkv", args.style)
        out = ev.decode(t / "clip.mkv")
        record = json.loads((args.degraded / f"{args.clip}.defects.json").read_text(encoding="utf-8"))
        k = args.frame
        if not 0 <= k < len(clean) or clean.shape[1] < ch or clean.shape[2] < cw:
            ap.error(f"--frame must be in 0..{len(clean) - 1} and --crop fit the {clean.shape[2]}x{clean.shape[1]} frames")
        x, y = densest(defect_mask(record, k, *clean.shape[1:3]), cw, ch)
        save(strip([(bad[k], f"degraded, frame {k}"), (out[k], f"--style {args.style}"), (clean[k], "clean")],
                   x, y, cw, ch, args.zoom), args.out_dir / "restore_degraded.png")
        print(f"  {args.clip} frame {k}, crop {cw}x{ch} at ({x}, {y})")
        # (b) a B&W film
        frames, pts, time_base, rate = ev.degrade_script.read_first(film, args.film_frames)
        before = np.stack(frames)
        ev.degrade_script.write_lossless(t / "film.mkv", before, pts, time_base, rate)
        ev.restore(t / "film.mkv", t / "film.restored.mkv", args.style)
        after = ev.decode(t / "film.restored.mkv")
    luma = ev.LUMA / 255
    diff = [np.abs(a.astype(np.float32) @ luma - b.astype(np.float32) @ luma) for a, b in zip(after, before)]
    most = int(np.argmax([(d > 0.1).sum() for d in diff]))
    if not 0 <= args.film_frame < len(before) or min(before.shape[1] - ch, before.shape[2] - cw) < 0:
        ap.error(f"--film-frame must be in 0..{len(before) - 1} and --crop fit the film's frames")
    rows = []
    for f, why in [(args.film_frame, "frame"), (most, "most changed: frame")][: 1 + (most != args.film_frame)]:
        x, y = densest(diff[f], cw, ch)
        rows.append(strip([(before[f], f"film, {why} {f}"), (after[f], f"--style {args.style}")], x, y, cw, ch,
                          args.zoom))
        print(f"  {args.film} frame {f}, crop {cw}x{ch} at ({x}, {y}), {int((diff[f] > 0.1).sum())} px changed > 0.1")
    gap = np.full((4, rows[0].shape[1], 3), 255, np.uint8)
    save(np.concatenate([r for row in rows for r in (row, gap)][:-1]), args.out_dir / "restore_film.png")
    # (c) the flicker plot
    plot([(f"{args.film}, first {len(before)} frames",
           [("before", ev.flicker(before)[1], "tab:red"), (f"--style {args.style}", ev.flicker(after)[1], "tab:blue")]),
          (f"{args.clip} degraded by docs/models/degrade.py (flicker ±10 %)",
           [("degraded", ev.flicker(bad)[1], "tab:red"), (f"--style {args.style}", ev.flicker(out)[1], "tab:blue"),
            ("clean", ev.flicker(clean)[1], "tab:grey")])],
         args.out_dir / "restore_flicker.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
