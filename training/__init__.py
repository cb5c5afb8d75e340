"""Training on your own footage (issue 5): datasets of clips, pix2pix / CycleGAN objectives with a
flow-warped temporal loss, a resumable and distributed trainer, export to weights + a style.

    from vidcolor.training import load_recipe, train, export_run, evaluate_run
    recipe = load_recipe("configs/train/colorize_tiny.toml", {"data.paths": '["clips/"]'})
    train(recipe, "runs/tiny")
    export_run("runs/tiny", "my_style")          # vidcolor run film.mp4 --style my_style

Modules: ``recipe`` (TOML -> dataclasses), ``media`` (scan, cache), ``decoding``, ``datasets``,
``losses``, ``objectives``, ``checkpoint``, ``trainer``, ``visuals``, ``export``. This package imports the
library; the library never imports it.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"load_recipe": "recipe", "Recipe": "recipe", "train": "trainer", "read_log": "trainer",
            "export_run": "export", "evaluate_run": "export", "temporal_loss": "losses"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vidcolor.training' has no attribute {name!r}")
    return getattr(importlib.import_module(f"vidcolor.training.{_EXPORTS[name]}"), name)
