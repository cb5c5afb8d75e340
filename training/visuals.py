"""Pictures of a training run: sample grids (input / output / target) and the loss curve."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from vidcolor.color import lab_to_rgb_keep_lightness
from vidcolor.errors import ProcessingError


@torch.no_grad()
def sample_rows(objective, batch: dict, recipe, n: int = 4) -> list[tuple[str, torch.Tensor]]:
    """Rows of the grid, each ``(name, (n, 3, H, W) RGB in [0, 1])``: the first frame of up to ``n``
    clips, with the generators in eval mode (what an exported model does)."""
    objective.train(False)
    try:
        if hasattr(objective, "sample_rows"):  # objectives that draw their own rows (style, critic)
            return objective.sample_rows(batch, n)
        a = batch["a"][:n, 0].to(objective.device)
        if recipe.objective.task == "colorize":
            inp = objective.prepare({"a": batch["a"][:n, :1]})[0][:, 0]  # (n, 1, H, W): (L - 50) / 50
            L = inp * 50 + 50
            ab = objective.generate(inp).float() * 110
            return [("input", (L / 100).expand(-1, 3, -1, -1)), ("output", lab_to_rgb_keep_lightness(L, ab)),
                    ("target", a)]
        if recipe.objective.task == "superres":  # the low-resolution input shown enlarged (nearest)
            low = objective.prepare({"a": batch["a"][:n, :1]})[0][:, 0]
            return [("input", torch.nn.functional.interpolate(low, size=a.shape[-2:], mode="nearest")),
                    ("output", objective.generate(low).float().clamp(0, 1)), ("target", a)]
        if recipe.objective.task == "restoration":  # the degraded middle frame, restored, clean
            x, y = objective.prepare({k: batch[k][:n] for k in ("a", "b")})[:2]
            x, y = x[:, 0], y[:, 0]
            return [("input", objective.nets["G"].middle(x)), ("output", objective.generate(x).float().clamp(0, 1)),
                    ("target", y)]
        fake = (objective.generate(a * 2 - 1).float() + 1) / 2
        b = batch["b"][:n, 0].to(objective.device)
        rows = [("input", a), ("output", fake.clamp(0, 1)), ("B" if recipe.objective.kind == "cyclegan" else "target", b)]
        if recipe.objective.kind == "cyclegan":
            rows.append(("B -> A", ((objective.nets["G_B"](b * 2 - 1).float() + 1) / 2).clamp(0, 1)))
        return rows
    finally:
        objective.train(True)


def save_sample_grid(path: Path, objective, batch: dict, recipe) -> None:
    """One PNG: a row per :func:`sample_rows` entry, clips side by side; written atomically."""
    import cv2

    rows = sample_rows(objective, batch, recipe)
    lines = [torch.cat(list(t.cpu()), dim=2) for _, t in rows]  # each (3, H, n*W)
    grid = torch.cat(lines, dim=1).clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    if not cv2.imwrite(str(tmp), cv2.cvtColor(np.ascontiguousarray(grid), cv2.COLOR_RGB2BGR)):
        raise ProcessingError(f"{path}: cannot write the sample grid")
    os.replace(tmp, path)


def save_loss_curve(path: Path, rows: list[dict[str, float]]) -> None:
    """Every loss column of ``log.csv`` against the step (log scale when all positive)."""
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in rows[-1] if k not in ("step", "lr", "seconds")]
    steps = [r["step"] for r in rows]
    fig, axes = plt.subplots(len(keys), 1, figsize=(7, 1.6 * len(keys) + 0.6), sharex=True, squeeze=False)
    for ax, k in zip(axes[:, 0], keys):
        values = [r.get(k, float("nan")) for r in rows]
        ax.plot(steps, values, lw=0.8)
        if all(v > 0 for v in values if v == v):
            ax.set_yscale("log")
        ax.set_ylabel(k, fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, path)
