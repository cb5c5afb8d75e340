"""Measure (and optionally set) the chroma gain of a colorizer on TRAINING-split footage.

    .venv/bin/python docs/models/calibrate_chroma.py WEIGHTS_FOLDER [--write]
    .venv/bin/python docs/models/calibrate_chroma.py WEIGHTS_FOLDER --temperatures 0.3,0.5,1 --gains 0.8,1 \
        --min-colourfulness 0.65 --write      # an ab-bin colorizer (effunet): temperature and gain
    .venv/bin/python docs/models/calibrate_chroma.py WEIGHTS_FOLDER --gains 1.0 --confidence-gains 0,0.5,1

For an ab-bin classifier (``effunet``) the knobs are its decoding keywords instead: ``temperature`` of
the annealed mean, ``chroma_gain`` and ``confidence_gain`` (extra gain where the distribution is
peaked; ``config.json``'s ``kwargs``), swept together.

An L1-trained colorizer predicts the conditional median of a*b*, which is less saturated than
real footage ("sepia mush"). Our weights format has the knob for that: ``config.json``'s
``ab_scale`` multiplies the network's tanh output. This script runs the real Colorize stage on
grey versions of training-split clips and photos (never the eval split) at a few gains and prints
colourfulness (ratio to the truth), CIEDE2000 and PSNR against the truth for each; ``--write``
stores the gain whose colourfulness ratio is closest to ``--target`` (default 1.0: as colourful as
real footage on average), or with ``--min-colourfulness R`` the gain with the lowest CIEDE2000 among
those at least R times as colourful as the truth, in the folder's config.json (``ab_scale = 110 * gain``; the previous
value and the calibration are recorded under ``meta.chroma_calibration``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate_colorizer import DATA, grey_of, read_clip, read_image  # noqa: E402

from vidcolor.metrics import ciede2000, colorfulness, psnr  # noqa: E402
from vidcolor.stages.base import StageContext  # noqa: E402
from vidcolor.stages.colorize import Colorize  # noqa: E402
from vidcolor.styles import get_style  # noqa: E402

CLIPS = ("sam2_bedroom.mp4", "sam2_01_dog.mp4", "tears_of_steel_battle_part1.mp4", "intel_car_detection.mp4",
         "intel_asl_book.mkv", "moviepy_sintel_2s.mp4")
IMAGES = "images/coco_mini_ccby"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("weights")
    ap.add_argument("--gains", default="1.0,1.25,1.5,1.75,2.0")
    ap.add_argument("--target", type=float, default=1.0)
    ap.add_argument("--min-colourfulness", type=float, default=None,
                    help="choose the lowest-CIEDE gain whose colourfulness ratio is at least this")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--render-size", type=int, default=None, help="default: the style's")
    ap.add_argument("--style", default="colorize", help="the style whose colorize stage is run (its TTA and all)")
    ap.add_argument("--tta-sigmas", default=None,
                    help="also try these mirror-agreement sigmas (comma-separated; 0 = plain mean of the two views); "
                         "default: the style's own value only")
    ap.add_argument("--temperatures", default=None,
                    help="annealed-mean temperatures to try (comma-separated) for an ab-bin colorizer (effunet)")
    ap.add_argument("--confidence-gains", default=None,
                    help="confidence gains to try (comma-separated) for an ab-bin colorizer: chroma times "
                         "1 + K * confidence per pixel; default: the model's own")
    ap.add_argument("--least-gain", action="store_true",
                    help="with --min-colourfulness: the smallest gain that reaches it (then the lowest CIEDE2000 "
                         "among its temperatures), not the lowest CIEDE2000 overall. Training-split CIEDE2000 is "
                         "measured on footage the model has seen and favours bold colour; the least gain that is "
                         "colourful enough risks the least wrong colour on unseen footage")
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args(argv)
    folder = Path(args.weights)
    cfg_path = folder / "config.json"
    cfg = json.loads(cfg_path.read_text())
    base = float(cfg.get("meta", {}).get("chroma_calibration", {}).get("ab_scale_trained", cfg["ab_scale"]))
    truths = [read_clip(DATA / "videos" / c, args.frames, 640) for c in CLIPS]
    imgs = sorted((DATA / IMAGES).glob("*.jpg"))[: args.images]
    truths += [read_image(p, 640) for p in imgs]
    # the colorize style's stage (its test-time augmentation and all), on these weights, no stabilizer
    overrides = {"weights": str(folder), "temporal": 0, **({"render_size": args.render_size} if args.render_size else {})}
    stage = get_style(args.style).build(StageContext(overrides=overrides))[0]
    sigmas = [float(v) for v in args.tta_sigmas.split(",")] if args.tta_sigmas else [stage.tta_sigma]
    binned = hasattr(stage.model, "temperature")  # effunet: decoding keywords instead of ab_scale
    temps = [float(v) for v in args.temperatures.split(",")] if args.temperatures and binned else [None]
    confs = [float(v) for v in args.confidence_gains.split(",")] if args.confidence_gains and binned else [None]
    if binned:
        base = float(cfg["ab_scale"])
    style_sigma, rows = stage.tta_sigma, {}  # rows[(gain, sigma, temperature, confidence gain)]

    def label(key: tuple) -> str:  # the table's key: the gain, plus @sigma / Ttemperature / Cgain for a grid
        text = str(key[0])
        if len(sigmas) > 1:
            text += f"@{key[1]:g}"
        if key[2] is not None:
            text += f" T{key[2]:g}"
        if key[3] is not None:
            text += f" C{key[3]:g}"
        return text

    grid = [(g, sigma, temp, conf) for conf in confs for temp in temps for sigma in sigmas
            for g in (float(v) for v in args.gains.split(","))]
    for g, sigma, temp, conf in grid:
        stage.tta_sigma = sigma
        if binned:
            stage.model.chroma_gain = g
            if temp is not None:
                stage.model.temperature = temp
            if conf is not None:
                stage.model.confidence_gain = conf
        else:
            stage.ab_scale = base * g
        cf_o, cf_t, de, ps = [], [], [], []
        for truth in truths:
            grey = grey_of(truth)
            out = _run(stage, grey)
            cf_o.append(np.mean([colorfulness(f) for f in out]))
            cf_t.append(np.mean([colorfulness(f) for f in truth]))
            de.append(ciede2000(out, truth))
            ps.append(psnr(out, truth))
        row = rows[(g, sigma, temp, conf)] = {"colorfulness_ratio": float(np.mean(cf_o) / np.mean(cf_t)),
                                              "ciede": float(np.mean(de)), "psnr": float(np.mean(ps))}
        print(f"gain {label((g, sigma, temp, conf))}: colourfulness/truth {row['colorfulness_ratio']:.2f}  "
              f"CIEDE {row['ciede']:.2f}  PSNR {row['psnr']:.2f}", flush=True)
    if args.min_colourfulness is not None:
        ok = [k for k in rows if rows[k]["colorfulness_ratio"] >= args.min_colourfulness] or \
            [max(rows, key=lambda k: rows[k]["colorfulness_ratio"])]
        if args.least_gain:
            ok = [k for k in ok if k[0] == min(k[0] for k in ok)]
        best = min(ok, key=lambda k: rows[k]["ciede"])
    else:
        best = min(rows, key=lambda k: abs(rows[k]["colorfulness_ratio"] - args.target))
    gain, sigma, temp, conf = best
    print(json.dumps({"chosen_gain": gain, "tta_sigma": sigma, "temperature": temp, "confidence_gain": conf,
                      **rows[best]}))
    if sigma != style_sigma:
        print(f"note: the best sigma is {sigma:g}, the colorize style uses {style_sigma:g} "
              "(configs/styles/colorize.toml, tta_sigma)", file=sys.stderr)
    if args.write:
        if binned:
            cfg["kwargs"]["chroma_gain"] = gain
            if temp is not None:
                cfg["kwargs"]["temperature"] = temp
            if conf is not None:
                cfg["kwargs"]["confidence_gain"] = conf
        else:
            cfg["ab_scale"] = round(base * gain, 6)  # 110 * 1.1 is 121.00000000000001 in binary
        cfg.setdefault("meta", {})["chroma_calibration"] = {
            "ab_scale_trained": base, "gain": gain,
            **({"temperature": temp, **({"confidence_gain": conf} if conf is not None else {})} if binned
               else {"tta_sigma": sigma}),
            **({"rule": ("smallest gain, then lowest CIEDE2000," if args.least_gain else "lowest CIEDE2000")
                        + f" with colourfulness ratio >= {args.min_colourfulness}"}
               if args.min_colourfulness is not None else {"target_colorfulness_ratio": args.target}),
            "data": f"training split: first {args.frames} frames of {', '.join(CLIPS)}; {len(imgs)} photos of {IMAGES}",
            "table": {label(k): v for k, v in rows.items()}, "script": "docs/models/calibrate_chroma.py"}
        cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return 0


def _run(stage: Colorize, grey: torch.Tensor) -> torch.Tensor:
    from vidcolor.stages.base import Chunk

    return stage(Chunk(frames=grey.clone(), index=0, source=grey)).frames


if __name__ == "__main__":
    raise SystemExit(main())
