"""Reproduce a shipped colorizer with one command: every stage of its recipe, in order, resumable.

    .venv/bin/python docs/models/train_colorizer.py [--model colorize] [--runs runs] [--out DIR] [--set KEY=VALUE ...]

``--model colorize`` (default): the ImageNet-encoder model (docs/models/colorize.md); ``--model
colorize-fast``: the small U-Net trained from scratch (docs/models/colorize-fast.md).

Stage k trains ``configs/train/<recipe>.toml`` into ``RUNS/<run>``, starting from the weights that
stage k-1 exported (each recipe's ``model.init_from``), then exports its own generator as
``colorize_stageK`` under ``$VIDCOLOR_HOME`` for the next stage (``vidcolor train export``). A
finished stage is skipped and an interrupted one resumed exactly (``vidcolor train --resume``), so
after a crash or a reboot the same command continues. At the end the last run is written as a
weights folder (``export_colorizer.py``: safetensors + config.json) to ``--out`` and its chroma gain
is set by the model card's rule on training-split footage (``calibrate_chroma.py
--min-colourfulness 0.7``). The shipped folder ``vidcolor/weights/colorize`` is only written with
``--out vidcolor/weights/colorize``.

Time on the 2-core development CPU, one training thread each, stages one after another: about 5.5
hours (docs/models/colorize.md, "Recipe"). ``--set`` applies to every stage (e.g. a short trial:
``--set train.steps=50 --set train.decay_start=25``); ``--stages K`` runs only the first K.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

# (recipe in configs/train, run folder under --runs, name the stage exports for the next one's init_from)
FAST_STAGES = (
    ("colorize_ship", "colorize_ship", "colorize_stage1"),
    ("colorize_ship_stage2", "colorize_ship2", "colorize_stage2"),
    ("colorize_ship_stage3", "colorize_ship3", "colorize_stage3"),
    ("colorize_ship_stage4", "colorize_ship4", "colorize_stage4"),
    ("colorize_ship_stage5", "colorize_ship5", "colorize_stage5"),
    ("colorize_ship_stage6_ciede", "colorize_ship6c", "colorize_stage6c"),
    ("colorize_ship_stage7", "colorize_ship7", "colorize_stage7"),
    ("colorize_ship_stage8", "colorize_ship8", "colorize_stage8"),
)
STAGES = (
    ("colorize_effunet", "colorize_effunet", "colorize_effunet_stage1"),
)
# per model: stages, and the calibration's arguments (grid and rule, docs/models/calibrate_chroma.py)
MODELS = {
    "colorize": (STAGES, ["--gains", "0.8,0.9,1.0,1.1,1.2", "--temperatures", "0.3,0.45,0.6,1.0",
                          "--min-colourfulness", "0.6", "--least-gain"]),
    "colorize-fast": (FAST_STAGES, ["--style", "colorize-fast", "--render-size", "128",
                                    "--gains", "0.8,0.9,1.0,1.1,1.2,1.4", "--min-colourfulness", "0.7"]),
}


def _vidcolor(args: list[str]) -> None:
    print("+ vidcolor " + " ".join(args), flush=True)
    exe = Path(sys.executable).with_name("vidcolor")  # the console script of this environment
    subprocess.run([str(exe), *args], cwd=REPO, check=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=sorted(MODELS), default="colorize", help="which shipped colorizer")
    ap.add_argument("--runs", default=str(REPO / "runs"), help="folder for the stages' run folders")
    ap.add_argument("--out", default=str(REPO / "runs" / "colorize_weights"), help="weights folder to write")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="recipe override for every stage (vidcolor train --set)")
    ap.add_argument("--stages", type=int, default=None, help="run only the first K stages")
    ap.add_argument("--frames", type=int, default=8, help="calibration: frames per training clip")
    ap.add_argument("--images", type=int, default=16, help="calibration: training photos")
    args = ap.parse_args(argv)
    from vidcolor.training.checkpoint import list_checkpoints
    from vidcolor.training.recipe import load_recipe

    stages, calibration = MODELS[args.model]
    overrides = dict(s.split("=", 1) for s in args.sets)
    sets = [a for s in args.sets for a in ("--set", s)]
    runs = Path(args.runs)
    last = None
    for recipe_name, run_name, export_name in stages[: args.stages]:
        config = REPO / "configs" / "train" / f"{recipe_name}.toml"
        run = runs / run_name
        steps = load_recipe(config, overrides).train.steps
        done = [step for step, _ in list_checkpoints(run)]
        if done and done[-1] >= steps:
            print(f"{run}: finished ({steps} steps), skipped", flush=True)
        elif done:
            _vidcolor(["train", "--resume", "--out", str(run)])
        else:
            _vidcolor(["train", str(config), "--out", str(run), *sets])
        _vidcolor(["train", "export", str(run), "--name", export_name, "--force"])  # re-runs refresh each export
        last = run
    if last is None:
        raise SystemExit("train_colorizer: no stage to run (--stages 0)")
    import calibrate_chroma
    import export_colorizer

    export_colorizer.main([str(last), "--name", args.model, "--out", args.out])
    calibrate_chroma.main([args.out, *calibration, "--write", "--frames", str(args.frames), "--images", str(args.images)])
    cfg = json.loads((Path(args.out) / "config.json").read_text())
    print(f"wrote {args.out} (step {cfg['meta'].get('step')}, ab_scale {cfg['ab_scale']:g}, "
          f"decoding {cfg['meta'].get('chroma_calibration', {})})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
