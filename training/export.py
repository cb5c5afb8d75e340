"""From a run folder to something ``vidcolor run`` uses, and how good it is on held-out footage.

* :func:`export_run` writes the generator of the last checkpoint as our weights folder
  (``home_dir()/weights/NAME``: safetensors + config.json with architecture, hyperparameters,
  recipe, data summary and the last ``train eval`` metrics) and a style
  ``home_dir()/styles/NAME.toml``, so ``vidcolor run film.mp4 --style NAME`` works right after.
* :func:`evaluate_run` runs the generator through the real inference stage (``Colorize`` /
  ``Stylize``: same working size, padding, guided upsampling) on held-out clips and images and
  reports PSNR, colourfulness and Lai et al.'s warping error, next to the grey-input baseline.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from vidcolor.errors import InputError
from vidcolor.training import checkpoint as ckpt
from vidcolor.training.objectives import AB_SCALE, L_NORM, generator_kwargs
from vidcolor.training.recipe import Recipe, recipe_from_dict

def load_run(run_dir: str | Path, step: int | None = None) -> tuple[nn.Module, Recipe, dict]:
    """(exported generator in eval mode, recipe, checkpoint) of ``run_dir``'s last (or ``step``) checkpoint.
    CycleGAN runs export G_A (domain A -> B)."""
    from vidcolor.models.registry import build_model

    run_dir = Path(run_dir)
    path = ckpt.find_checkpoint(run_dir, step)
    data = ckpt.load_checkpoint(path)
    recipe = recipe_from_dict(data["recipe"], f"{path} (recipe)")
    if recipe.objective.kind == "critic":
        raise InputError(f"{run_dir} is a realism critic (no generator to export or run): "
                         "use it with vidcolor eval --critic RUN")
    net = build_model(recipe.model.arch, **generator_kwargs(recipe))
    key = "G_A" if recipe.objective.kind == "cyclegan" else "G"
    net.load_state_dict(data["nets"][key])
    return net.eval(), recipe, data


def weights_config(recipe: Recipe, data: dict, metrics: dict | None = None) -> dict[str, Any]:
    """config.json for :func:`vidcolor.models.pretrained.save_pretrained`."""
    config: dict[str, Any] = {"arch": recipe.model.arch, "kwargs": generator_kwargs(recipe),
                              "task": recipe.objective.task,
                              "meta": {"trained_by": "vidcolor train", "recipe": recipe.to_dict(),
                                       "step": int(data["step"]), "data": data.get("data", {}).get("summary", {}),
                                       "metrics": metrics or {}}}
    if recipe.objective.task == "colorize":
        config.update(l_norm=list(L_NORM), ab_scale=AB_SCALE)
    if recipe.objective.from_grey:  # the stylize stage feeds it the frames' lightness
        config["input"] = "grey"
    return config


def export_run(run_dir: str | Path, name: str, *, step: int | None = None,
               overwrite: bool = False) -> tuple[Path, Path]:
    """Write ``home_dir()/weights/NAME`` and ``home_dir()/styles/NAME.toml``; returns both paths.
    Existing weights or a style of that name are replaced only with ``overwrite``."""
    from vidcolor.models.pretrained import cache_dir, save_pretrained
    from vidcolor.user_styles import check_user_name, user_style_path, write_user_style

    # the rule of `vidcolor models import`: a registry or built-in name would shadow or be shadowed
    check_user_name(name)
    target = cache_dir() / name
    style = user_style_path(name)
    for existing in (target, style):
        if not overwrite and existing.exists():
            raise InputError(f"{name!r} exists already ({existing}); pass --force to replace it")
    net, recipe, data = load_run(run_dir, step)
    metrics_file = Path(run_dir) / "eval.json"
    metrics = json.loads(metrics_file.read_text())["mean"] if metrics_file.is_file() else {}
    weights = save_pretrained(net, target, weights_config(recipe, data, metrics))
    superres = recipe.objective.task == "superres"
    style = write_user_style(name, task=recipe.objective.task,
                             description=f"Trained with vidcolor train ({recipe.name}, {recipe.objective.kind})",
                             render_size=recipe.export.render_size, stabilize=recipe.export.stabilize,
                             factor=int(recipe.model.kwargs.get("scale", 2)) if superres else None)
    return weights, style


# -- evaluation ------------------------------------------------------------------------------------------
def _load_frames(source, max_frames: int, size: int):
    """(T, 3, H, W) float RGB in [0, 1] at short side ``size`` (the first ``max_frames`` of a video)."""
    import numpy as np

    from vidcolor.training.decoding import decode_frames, read_image, resize_short

    if source.kind == "image":
        frames = resize_short(read_image(source.path), size)[None]
    else:
        n = min(source.frames, max_frames)
        frames = np.stack([resize_short(f, size) for f in decode_frames(source.path, source.backend, list(range(n)))])
    h, w = (d - d % 2 for d in frames.shape[1:3])
    return torch.from_numpy(np.ascontiguousarray(frames[:, :h, :w])).permute(0, 3, 1, 2).float() / 255.0


@torch.no_grad()
def evaluate_run(run_dir: str | Path, data: list[str], *, max_frames: int = 32, size: int | None = None,
                 step: int | None = None, flow: str = "dis", write: bool = True, warn=None) -> dict[str, Any]:
    """Metrics of the run's generator on the clips and images under ``data`` (nothing is excluded:
    point it at held-out footage). Each source is read at short side ``size`` (default: the
    recipe's ``export.render_size``), the first ``max_frames`` frames of a video.

    Colorize: the model sees the grey version; PSNR (dB) and CIEDE2000 against the truth,
    colourfulness as a fraction of the truth's, warping error (Lai et al., flow and occlusion on
    the input) — each with the grey baseline (the input shown as output) for scale.
    Stylize: colourfulness and warping error of the output (no ground truth).
    Returns ``{"sources": [...], "mean": {...}}``; also written to ``RUN_DIR/eval.json``.
    """
    from vidcolor.color import lab_to_rgb_keep_lightness, rgb_to_lightness
    from vidcolor.flow import get_flow_estimator
    from vidcolor.metrics import ciede2000, colorfulness, mean_or_nan, psnr, warping_error
    from vidcolor.models.pretrained import save_pretrained
    from vidcolor.training.media import scan

    net, recipe, ckpt_data = load_run(run_dir, step)
    if recipe.objective.task == "superres":
        raise InputError("train eval measures colorizers and stylizers; measure a superres run with "
                         "docs/models/evaluate_upscale.py --weights FOLDER after `vidcolor train export`")
    if recipe.objective.task == "restoration":
        raise InputError("train eval measures colorizers and stylizers; measure a restoration run with "
                         "docs/models/evaluate_restore.py --style NAME after `vidcolor train export --name NAME`")
    size = size or recipe.export.render_size
    found = scan(data, exclude_splits=(), warn=warn)
    if not found.sources:
        raise InputError(f"no readable images or videos in {', '.join(data)}")
    estimator, _ = get_flow_estimator(flow, device="cpu")
    colorize = recipe.objective.task == "colorize"
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_pretrained(net, Path(tmp) / "model", weights_config(recipe, ckpt_data))
        if colorize:
            from vidcolor.stages.colorize import Colorize

            stage = Colorize(weights=str(folder), render_size=size, precision="fp32")
        else:
            from vidcolor.stages.stylize import Stylize

            stage = Stylize(weights=str(folder), render_size=size, precision="fp32")
        rows = []
        for source in found.sources:
            truth = _load_frames(source, max_frames, size)
            L = rgb_to_lightness(truth)
            grey = lab_to_rgb_keep_lightness(L, torch.zeros_like(truth[:, :2]))
            if colorize:
                out = torch.cat([lab_to_rgb_keep_lightness(L[i:i + 4], stage.colorize_L(L[i:i + 4]))
                                 for i in range(0, len(L), 4)])
            else:
                out = torch.cat([stage.stylize(truth[i:i + 4]) for i in range(0, len(truth), 4)])
            flow_input = grey if colorize else truth
            row: dict[str, Any] = {"path": source.path, "frames": len(truth),
                                   "colorfulness": mean_or_nan([colorfulness(f) for f in out])}
            if colorize:
                truth_cf = mean_or_nan([colorfulness(f) for f in truth])
                row.update(psnr=psnr(out, truth), psnr_grey=psnr(grey, truth), ciede2000=ciede2000(out, truth),
                           ciede2000_grey=ciede2000(grey, truth), colorfulness_truth=truth_cf,
                           colorfulness_ratio=row["colorfulness"] / truth_cf if truth_cf > 0 else float("nan"))
            if len(out) >= 2:
                row["warping_error"] = warping_error(out, flow_input, estimator)[0]
                if colorize:
                    row["warping_error_truth"] = warping_error(truth, flow_input, estimator)[0]
            rows.append(row)
    keys = [k for k in rows[0] if k not in ("path", "frames")] + ["warping_error", "warping_error_truth"]
    mean = {k: mean_or_nan([r[k] for r in rows if k in r]) for k in dict.fromkeys(keys)}
    result = {"step": int(ckpt_data["step"]), "size": size, "max_frames": max_frames, "flow": flow,
              "sources": rows, "mean": mean}
    if write:
        (Path(run_dir) / "eval.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result
