"""Export a `vidcolor train` superres run as the package's shipped upscale weights (vidcolor/weights/NAME).

    .venv/bin/python docs/models/export_upscale.py RUN_DIR [--name upscale-x2] [--step N] [--metrics eval.json]
                                                   [--hours H] [--out FOLDER]

As ``export_colorizer.py``: ``vidcolor train export`` refuses built-in names and writes under
$VIDCOLOR_HOME; this writes the shipped folder with the same config (architecture, kwargs, recipe,
data summary, step) plus the eval-clip figures of ``evaluate_upscale.py --json``, and prints the
sha256 to pin in ``vidcolor/models/weights.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from vidcolor.models.pretrained import save_pretrained
from vidcolor.training.export import load_run, weights_config

WEIGHTS = Path(__file__).resolve().parents[2] / "vidcolor" / "weights"
DESCRIPTIONS = {
    "upscale-x2": "vidcolor's x2 super-resolution network: residual over bicubic, 5 convolutions of 48 channels at "
                  "the input resolution and a pixel shuffle, trained by vidcolor train (see the model card)",
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--step", type=int, default=None)
    ap.add_argument("--metrics", default=None, help="JSON written by evaluate_upscale.py --json")
    ap.add_argument("--hours", type=float, default=None, help="wall-clock training time to record")
    ap.add_argument("--name", choices=sorted(DESCRIPTIONS), default="upscale-x2")
    ap.add_argument("--out", default=None, help="default: vidcolor/weights/NAME")
    args = ap.parse_args(argv)
    net, recipe, data = load_run(args.run_dir, args.step)
    metrics = {}
    if args.metrics:
        rep = json.loads(Path(args.metrics).read_text())
        metrics = {"eval_clips_mean": rep["mean"], "frames_per_clip": rep["frames"], "size": rep["size"]}
    config = weights_config(recipe, data, metrics)
    card = "docs/models/upscale.md"
    config["meta"].update(name=args.name, licence=f"Apache-2.0 (vidcolor); training data licences in {card}",
                          description=DESCRIPTIONS[args.name], model_card=card)
    if args.hours is not None:
        config["meta"]["training_hours"] = args.hours
    folder = save_pretrained(net, args.out or WEIGHTS / args.name, config)
    digest = hashlib.sha256((folder / "weights.safetensors").read_bytes()).hexdigest()
    print(json.dumps({"folder": str(folder), "step": int(data["step"]), "sha256": digest,
                      "params": sum(p.numel() for p in net.parameters())}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
