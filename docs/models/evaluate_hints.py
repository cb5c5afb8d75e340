"""Measure colour hints (issue #18's bar): 20 random single-pixel hints per Kodak24 image.

    .venv/bin/python docs/models/evaluate_hints.py                       # the eval figure, Kodak24
    .venv/bin/python docs/models/evaluate_hints.py --json out.json
    .venv/bin/python docs/models/evaluate_hints.py --tune                # settings, on train photos

For each image: its CIE L* (the truth's, kept in every output), the automatic colorizer's chroma
(the shipped ``colorize`` weights, render size 160, per frame), and ``--hints`` pixels drawn at
random (``numpy.random.default_rng((seed, image number))``) whose true colour (8-bit sRGB) becomes a
point hint (:class:`vidcolor.guides.hints.Hint`). :func:`vidcolor.guides.hints.apply_hints` spreads
them at short side ``--size`` and brings the result to full size; the L* of the truth with each
chroma gives an sRGB image (``lab_to_rgb_keep_lightness``) whose mean CIEDE2000 to the truth is
reported for: the automatic colorizer alone, hints + auto (the residual spread and fused with it),
and hints alone (no prior). The bar: hints + auto at least 30 % below auto alone.

``--tune`` runs a grid of solver settings (working size, sigma, reach, falloff) on
``--train-images`` photographs of the train split (``images/color_cq100``, sorted, the first N;
the eval images are never read) and prints the mean CIEDE2000 of hints + auto and hints alone for
each setting, best first. The defaults in :mod:`vidcolor.guides.hints` come from that run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from vidcolor.color import lab_to_rgb_keep_lightness, rgb_to_lab
from vidcolor.errors import VidcolorError
from vidcolor.guides import hints as H
from vidcolor.metrics import delta_e_ciede2000

DATA = Path(os.environ.get("VIDCOLOR_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
EVAL_DIR = "images/color_kodak24"
TRAIN_DIR = "images/color_cq100"


def read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB")).copy()


def random_hints(rgb8: np.ndarray, n: int, seed: tuple[int, ...]) -> list[H.Hint]:
    """``n`` single-pixel hints at random positions of ``rgb8`` ``(H, W, 3)`` uint8, with its colours."""
    rng = np.random.default_rng(seed)
    h, w = rgb8.shape[:2]
    ys, xs = rng.integers(0, h, n), rng.integers(0, w, n)
    return [H.Hint(frame=0, kind="points", coords=((float(x), float(y)),),
                   rgb=tuple(int(v) for v in rgb8[y, x])) for x, y in zip(xs, ys)]


class Case:
    """One image: truth, L*, the automatic chroma and the hints."""

    def __init__(self, path: Path, colorizer, n_hints: int, seed: tuple[int, ...]) -> None:
        self.name = path.name
        rgb8 = read_rgb(path)
        self.truth = torch.from_numpy(rgb8).permute(2, 0, 1)[None].float() / 255.0
        self.lab = rgb_to_lab(self.truth)
        self.L = self.lab[0, :1]
        self.auto = colorizer.colorize_L(self.L[None])[0].float()
        self.hints = random_hints(rgb8, n_hints, seed)

    def error(self, ab: torch.Tensor) -> float:
        rgb = lab_to_rgb_keep_lightness(self.L[None], ab[None].float())
        return float(delta_e_ciede2000(rgb_to_lab(rgb), self.lab).mean())

    def measure(self, size: int, **options) -> dict[str, float]:
        with_auto, _ = H.apply_hints(self.L, self.hints, self.auto, size=size, **options)
        alone, _ = H.apply_hints(self.L, self.hints, None, size=size, **options)
        return {"auto": self.error(self.auto), "hints_auto": self.error(with_auto),
                "hints_alone": self.error(alone)}


def load_cases(folder: Path, limit: int | None, n_hints: int, seed: int) -> list[Case]:
    from vidcolor.stages.colorize import Colorize

    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))[:limit]
    if not paths:
        raise VidcolorError(f"no images in {folder} (set VIDCOLOR_SHARED_DATA to the shared data folder)")
    colorizer = Colorize(weights="colorize", render_size=160, temporal=0)
    return [Case(p, colorizer, n_hints, (seed, k)) for k, p in enumerate(paths)]


def means(rows: dict[str, dict[str, float]]) -> dict[str, float]:
    keys = ("auto", "hints_auto", "hints_alone")
    m = {k: float(np.mean([r[k] for r in rows.values()])) for k in keys}
    m["reduction_pct"] = 100.0 * (1.0 - m["hints_auto"] / m["auto"])
    m["reduction_alone_pct"] = 100.0 * (1.0 - m["hints_alone"] / m["auto"])
    return m


def time_spread(case: Case, **options) -> float:
    """Median seconds of :func:`vidcolor.guides.hints.spread` with the prior at 256x384 (the first
    image, a 512x768 Kodak photo, halved)."""
    from vidcolor.models.runtime import resize

    small = (256, 384) if case.L.shape[-2] < case.L.shape[-1] else (384, 256)
    L = resize(case.L[None], small)[0]
    prior = resize(case.auto[None], small)[0]
    hint_ab, mask = H.rasterize(case.hints, *small, *case.L.shape[-2:])
    times = []
    for _ in range(5):
        t = time.perf_counter()
        H.spread(L, hint_ab, mask, prior, **options)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def tune(cases: list[Case]) -> list[dict]:
    grid = itertools.product((96, 128), (2.0, 3.0, 4.0), (0.25, 0.5), (0.25,), (2.0,))
    results = []
    for size, sigma, reach, falloff, prior_sigma in grid:
        options = {"sigma": sigma, "reach": reach, "falloff": falloff, "prior_sigma": prior_sigma}
        rows = {c.name: c.measure(size, **options) for c in cases}
        m = means(rows)
        results.append({"size": size, **options, **m})
        print(f"size {size:3d} sigma {sigma:4.1f} reach {reach:4.2f} falloff {falloff:4.2f} "
              f"prior_sigma {prior_sigma}: "
              f"auto {m['auto']:.3f} hints+auto {m['hints_auto']:.3f} ({m['reduction_pct']:.1f} %) "
              f"alone {m['hints_alone']:.3f}", file=sys.stderr, flush=True)
    return sorted(results, key=lambda r: r["hints_auto"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    ap.add_argument("--hints", type=int, default=20, help="hints per image")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--size", type=int, default=H.SIZE, help="short side of the working size")
    ap.add_argument("--sigma", type=float, default=H.SIGMA)
    ap.add_argument("--reach", type=float, default=H.REACH)
    ap.add_argument("--falloff", type=float, default=H.FALLOFF)
    ap.add_argument("--prior-sigma", type=float, default=H.PRIOR_SIGMA)
    ap.add_argument("--tune", action="store_true", help="grid of settings on train photographs, not Kodak24")
    ap.add_argument("--train-images", type=int, default=24)
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args(argv)
    torch.set_grad_enabled(False)
    torch.set_num_threads(1)  # small tensors: one thread is as fast and does not fight other jobs
    try:
        if args.tune:
            cases = load_cases(args.data / TRAIN_DIR, args.train_images, args.hints, args.seed)
            results = tune(cases)
            for r in results[:10]:
                print(json.dumps(r))
            report = {"set": TRAIN_DIR, "images": len(cases), "hints": args.hints, "seed": args.seed,
                      "grid": results}
        else:
            cases = load_cases(args.data / EVAL_DIR, None, args.hints, args.seed)
            options = {"sigma": args.sigma, "reach": args.reach, "falloff": args.falloff,
                       "prior_sigma": args.prior_sigma}
            rows, seconds = {}, []
            print("| image | auto | hints + auto | hints alone | reduction |\n|---|---|---|---|---|")
            for c in cases:
                t = time.perf_counter()
                rows[c.name] = r = c.measure(args.size, **options)
                seconds.append(time.perf_counter() - t)
                print(f"| {c.name} | {r['auto']:.2f} | {r['hints_auto']:.2f} | {r['hints_alone']:.2f} | "
                      f"{100 * (1 - r['hints_auto'] / r['auto']):.1f} % |", flush=True)
            m = means(rows)
            print(f"| **mean of {len(rows)}** | {m['auto']:.2f} | {m['hints_auto']:.2f} | "
                  f"{m['hints_alone']:.2f} | "
                  f"{m['reduction_pct']:.1f} % |")
            met = "met" if m["reduction_pct"] >= 30 else "NOT met"
            print(f"bar (hints + auto at least 30 % below auto): {met}")
            solve_s = time_spread(cases[0], **options)
            print(f"spread at 256x384 (one thread, median of 5): {solve_s * 1000:.0f} ms; hints + auto and "
                  "hints "
                  f"alone at full size: {np.median(seconds):.2f} s per image")
            report = {"set": EVAL_DIR, "hints": args.hints, "seed": args.seed, "size": args.size, **options,
                      "images": rows, "mean": m, "seconds_per_image_both_solves": float(np.median(seconds)),
                      "spread_256x384_seconds": solve_s}
    except VidcolorError as e:
        print(f"evaluate_hints: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
