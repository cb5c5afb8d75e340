"""Export a `vidcolor train` run as one of the package's shipped networks (vidcolor/weights/NAME):
the colorizers, the x2 upscaler and the painting styles.

    .venv/bin/python docs/models/export_colorizer.py RUN_DIR [--name colorize] [--step N] [--metrics eval.json] [--hours 1.0]
    .venv/bin/python docs/models/export_colorizer.py RUN_DIR --name upscale-x2 --metrics upscale_eval.json
    .venv/bin/python docs/models/export_colorizer.py RUN_DIR --name starry-night --metrics paint_eval.json

``vidcolor train export`` writes user weights under $VIDCOLOR_HOME and refuses built-in names; the
shipped folder is written here instead, with the same config (architecture, kwargs, recipe, data
summary) plus the eval-split metrics (``evaluate_colorizer.py --json`` or ``evaluate_upscale.py --json``),
and the sha256 to paste into ``vidcolor/models/weights.py``. A painting style's metrics are its
entry in ``evaluate_paint.py --json`` (the eval clips' means, shipped and without the stabilizer).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from vidcolor.models.pretrained import save_pretrained
from vidcolor.models.weights import WEIGHTS as WEIGHTS_REGISTRY
from vidcolor.training.export import load_run, weights_config

WEIGHTS = Path(__file__).resolve().parents[2] / "vidcolor" / "weights"
DESCRIPTIONS = {
    "colorize": "vidcolor's default colorizer: ImageNet EfficientNet-Lite0 encoder, U-Net decoder, ab-bin "
                "classification (L -> ab), trained by vidcolor train (see the model card)",
    "colorize-fast": "vidcolor's fast colorizer: small pix2pix U-Net (L -> ab) trained from scratch by vidcolor train "
                     "(see the model card)",
    "upscale-x2": "vidcolor's x2 super-resolution network: residual over bicubic, 5 convolutions of 48 channels at "
                  "the input resolution and a pixel shuffle, trained by vidcolor train (see the model card)",
}
# The painting styles: their registry entries (vidcolor/models/weights.py) hold names and descriptions
# (a new style: register it first, with the sha256 this script prints for an export to --out elsewhere).
PAINT_STYLES = [n for n, e in WEIGHTS_REGISTRY.items() if e.package and e.arch == "paintnet"]
DESCRIPTIONS.update({n: f"{WEIGHTS_REGISTRY[n].description} (see the model card)" for n in PAINT_STYLES})
CARDS = {"upscale-x2": "docs/models/upscale.md",
         **{n: "docs/models/paint.md" for n in PAINT_STYLES}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--step", type=int, default=None)
    ap.add_argument("--metrics", default=None, help="JSON written by evaluate_colorizer.py or evaluate_upscale.py --json")
    ap.add_argument("--hours", type=float, default=None, help="wall-clock training time to record")
    ap.add_argument("--name", choices=sorted(DESCRIPTIONS), default="colorize", help="which shipped network")
    ap.add_argument("--out", default=None, help="default: vidcolor/weights/NAME")
    args = ap.parse_args(argv)
    net, recipe, data = load_run(args.run_dir, args.step)
    metrics = {}
    if args.metrics:
        rep = json.loads(Path(args.metrics).read_text())
        if args.name == "upscale-x2":  # evaluate_upscale.py
            metrics = {"eval_clips_mean": rep["mean"], "frames_per_clip": rep["frames"], "size": rep["size"]}
        elif args.name in CARDS:  # evaluate_paint.py
            metrics = {"eval_clips_mean": rep["styles"][args.name]["mean"], "frames_per_clip": rep["frames"]}
        else:
            metrics = {"eval_clips_mean": rep.get("clips_mean", {}), "kodak24_mean": rep.get("kodak_mean", {}),
                       "frames_per_clip": rep.get("frames"), "temporal": rep.get("temporal")}  # the stabilizer strength
    config = weights_config(recipe, data, metrics)
    card = CARDS.get(args.name, f"docs/models/{args.name}.md")
    config["meta"].update(name=args.name, licence=f"Apache-2.0 (vidcolor); training data licences in {card}",
                          description=DESCRIPTIONS[args.name], model_card=card)
    if args.hours is not None:
        config["meta"]["training_hours"] = args.hours
    folder = save_pretrained(net, args.out or WEIGHTS / args.name, config)
    digest = hashlib.sha256((folder / "weights.safetensors").read_bytes()).hexdigest()
    print(json.dumps({"folder": str(folder), "step": int(data["step"]), "sha256": digest,
                      "params": config["meta"].get("params") or sum(p.numel() for p in net.parameters())}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
