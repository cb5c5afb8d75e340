"""Shared pieces of the stage tests."""

from __future__ import annotations

from pathlib import Path

import torch

from vidcolor.models.pretrained import save_pretrained
from vidcolor.models.registry import build_model


def tiny_colorizer(folder: Path) -> Path:
    """A tiny 1 -> 2 U-Net weights folder with its weights scaled up, so its ab is strong (often out of
    gamut): any colorizer does for tests of what the stage does around the model."""
    torch.manual_seed(0)
    kwargs = {"ngf": 4, "num_downs": 5}
    model = build_model("unet", **kwargs)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 4:
                p.mul_(8)
    return save_pretrained(model, folder, {"arch": "unet", "kwargs": kwargs, "task": "colorize",
                                           "l_norm": [50, 50], "ab_scale": 110})
