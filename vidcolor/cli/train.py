"""``vidcolor train``: train a colorizer or stylizer on your own footage, export it, measure it.

    vidcolor train RECIPE.toml --data FOLDER [--data-b FOLDER] --out RUN_DIR [--set k=v] [--resume] [--steps N]
    vidcolor train export RUN_DIR --name NAME
    vidcolor train eval RUN_DIR --data FOLDER

``train RECIPE`` is short for ``train run RECIPE`` (a group whose default command is ``run``).
"""

from __future__ import annotations

import click

from vidcolor.cli.common import STATE, handle_errors, parse_key_values, warn


class DefaultGroup(click.Group):
    """A group that runs ``default_cmd`` when the first word is not a subcommand
    (``vidcolor train recipe.toml ...`` == ``vidcolor train run recipe.toml ...``)."""

    default_cmd = "run"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = [self.default_cmd, *args]
        elif not args:
            args = [self.default_cmd]
        return super().parse_args(ctx, args)


@click.group("train", cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
def train() -> None:
    """Train a colorizer or stylizer on your own footage (pix2pix / CycleGAN + temporal loss).

    \b
    Examples:
      vidcolor train configs/train/colorize_tiny.toml --data ../shared/data/videos --out runs/tiny
      vidcolor train cyclegan_tiny --data clips/ --data-b old_photos/ --out runs/cg --set train.steps=500
      vidcolor train --resume --out runs/tiny          # continue after a crash (same recipe, exact)
      vidcolor train export runs/tiny --name my_style  # then: vidcolor run film.mp4 --style my_style
      vidcolor train eval runs/tiny --data held_out/
      torchrun --nproc_per_node 2 -m vidcolor.training RECIPE --data ... --out RUN_DIR   # DDP (gloo on CPU)
    """


@train.command("run")
@click.argument("recipe", required=False, metavar="RECIPE")
@click.option("--data", "data", multiple=True, help="Colour footage / domain A folder or file (repeatable).")
@click.option("--data-b", "data_b", multiple=True, help="Domain B (CycleGAN) or aligned targets (repeatable).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Run folder (checkpoints, logs).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a recipe value: train.steps=500.")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in --out (exactly).")
@click.option("--steps", type=click.IntRange(1), help="Total steps (overrides train.steps; also on --resume).")
@handle_errors
def run_cmd(recipe: str | None, data: tuple[str, ...], data_b: tuple[str, ...], out: str, sets: tuple[str, ...],
            resume: bool, steps: int | None) -> None:
    """Train RECIPE (a .toml path or a built-in name: colorize_tiny, cyclegan_tiny, colorize_default)."""
    import json
    from pathlib import Path

    from vidcolor.errors import InputError
    from vidcolor.training.recipe import find_recipe, load_recipe, recipe_from_dict

    overrides = parse_key_values(sets, "--set")
    if data:
        overrides["data.paths"] = json.dumps([str(Path(p)) for p in data])
    if data_b:
        overrides["data.paths_b"] = json.dumps([str(Path(p)) for p in data_b])
    if recipe is None:
        saved = Path(out) / "recipe.json"
        if not (resume and saved.is_file()):
            raise InputError("give a RECIPE (or --resume with an --out folder that has a recipe.json)")
        from vidcolor.training.recipe import apply_overrides
        from vidcolor.training.trainer import RESUME_KEYS

        other = sorted(k for k in overrides if k not in {f"train.{key}" for key in RESUME_KEYS})
        if other:
            raise InputError(f"--set {other[0]}: a resumed run keeps its recipe; only "
                             f"{', '.join('train.' + k for k in RESUME_KEYS)} may change")
        r = recipe_from_dict(apply_overrides(json.loads(saved.read_text()), overrides), str(saved))
    else:
        r = load_recipe(find_recipe(recipe), overrides)
    _train_and_report(r, out, resume, steps)


def _train_and_report(r, out: str, resume: bool, steps: int | None) -> None:
    from vidcolor.training.trainer import train as run_training

    report = run_training(r, out, resume=resume, steps=steps, progress=None if not STATE.quiet else False,
                          warn=None if STATE.quiet else warn)
    a = report.data.get("a", {})
    skipped = sum(d.get("unreadable", 0) for d in report.data.values())
    losses = " ".join(f"{k} {v:.4f}" for k, v in report.last.items())
    click.echo(f"trained {report.start_step} -> {report.steps} steps in {report.seconds:.0f} s "
               f"({a.get('images', 0)} images, {a.get('videos', 0)} videos, {skipped} unreadable skipped); "
               f"last: {losses}; checkpoint: {report.checkpoint}")


@train.command("style")
@click.option("--style-image", required=True, type=click.Path(dir_okay=False),
              help="The painting whose manner the network learns (any image OpenCV reads).")
@click.option("--data", "data", multiple=True, required=True,
              help="Colour footage and photos to learn on (folders or files, repeatable; eval split excluded).")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="Run folder (checkpoints, logs).")
@click.option("--from-grey", is_flag=True,
              help="Learn to colorize and paint in one pass: the network sees black-and-white frames.")
@click.option("--no-temporal", is_flag=True, help="Train without the temporal losses (for comparison).")
@click.option("--recipe", default=None, metavar="RECIPE",
              help="Start from this recipe instead of the built-in paint (paint_joint with --from-grey).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a recipe value: train.steps=500.")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in --out (exactly).")
@click.option("--steps", type=click.IntRange(1), help="Total steps (overrides train.steps; also on --resume).")
@handle_errors
def style_cmd(style_image: str, data: tuple[str, ...], out: str, from_grey: bool, no_temporal: bool,
              recipe: str | None, sets: tuple[str, ...], resume: bool, steps: int | None) -> None:
    """Train a painting style from one picture (feed-forward network, content + style + temporal losses).

    \b
    Examples:
      vidcolor train style --style-image starry_night.jpg --data clips/ --data photos/ --out runs/starry
      vidcolor train style --style-image wave.jpg --from-grey --data clips/ --out runs/wave_bw
      vidcolor train export runs/starry --name my-starry   # then: vidcolor run film.mp4 --style my-starry
    """
    import json
    from pathlib import Path

    from vidcolor.training.recipe import find_recipe, load_recipe

    overrides = parse_key_values(sets, "--set")
    overrides["objective.style_image"] = json.dumps(str(Path(style_image).resolve()))
    overrides["data.paths"] = json.dumps([str(Path(p)) for p in data])
    if from_grey:
        overrides["objective.from_grey"] = "true"
    if no_temporal:
        overrides.update({"objective.lambda_temporal": "0.0", "objective.lambda_feature_temporal": "0.0"})
    name = recipe or ("paint_joint" if from_grey else "paint")
    _train_and_report(load_recipe(find_recipe(name), overrides), out, resume, steps)


@train.command("export")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--name", required=True, help="Style and weights name to create (vidcolor run --style NAME).")
@click.option("--step", type=int, help="Export this checkpoint's step instead of the last one.")
@click.option("--force", is_flag=True, help="Replace existing weights and style of that name (your own earlier export).")
@handle_errors
def export_cmd(run_dir: str, name: str, step: int | None, force: bool) -> None:
    """Write RUN_DIR's generator as weights + a style in VIDCOLOR_HOME.

    Names of registered weights and built-in styles are reserved; an existing NAME needs --force.
    """
    from vidcolor.training.export import export_run

    weights, style = export_run(run_dir, name, step=step, overwrite=force)
    click.echo(f"exported {weights} and {style}; try: vidcolor run INPUT --style {name}")


@train.command("eval")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--data", "data", multiple=True, required=True, help="Held-out footage (folders or files).")
@click.option("--frames", "max_frames", type=click.IntRange(2), default=32, show_default=True,
              help="First N frames of each video.")
@click.option("--size", type=click.IntRange(16), help="Short side the footage is read at [default: recipe's render_size].")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@handle_errors
def eval_cmd(run_dir: str, data: tuple[str, ...], max_frames: int, size: int | None, as_json: bool) -> None:
    """PSNR / colourfulness / warping error of RUN_DIR's generator on held-out footage."""
    import json
    from pathlib import Path

    from vidcolor.training.export import evaluate_run

    result = evaluate_run(run_dir, list(data), max_frames=max_frames, size=size, warn=warn)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    from rich.table import Table

    from vidcolor.cli.common import console

    cols = [k for k in result["mean"] if any(k in r for r in result["sources"])]
    table = Table(title=f"step {result['step']}, short side {result['size']}, flow {result['flow']}")
    table.add_column("source")
    for c in cols:
        table.add_column(c, justify="right")
    for r in result["sources"] + [{"path": "mean", **result["mean"]}]:
        table.add_row(Path(r["path"]).name, *[f"{r[c]:.4g}" if c in r else "-" for c in cols])
    console(stderr=False).print(table)
