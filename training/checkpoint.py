"""Training checkpoints: everything needed to continue a run exactly, written atomically.

A checkpoint ``RUN_DIR/checkpoints/step_0000100.pt`` holds the networks, optimizers, schedulers
(and AMP scalers), the step, the RNG states of python/numpy/torch, the objective's own state
(image pools, the ab prior), the data position (the next global sample index: the data order is
a function of (seed, step), see ``datasets.py``) and the recipe. It is written to a temporary
file in the same folder, flushed to disk and renamed over the final name (``os.replace`` is
atomic on POSIX and Windows), so a crash or SIGKILL leaves either the previous checkpoint or the
new one, never half a file. Only the last ``keep`` checkpoints are kept.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT = "vidcolor-train/1"
_NAME = re.compile(r"^step_(\d{7,})\.pt$")


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """``[(step, path)]`` sorted by step (temporary files of an interrupted write are ignored)."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def find_checkpoint(run_dir: str | Path, step: int | None = None) -> Path:
    """The last checkpoint of ``run_dir`` (or the one of ``step``); one-line ``InputError`` when there is none."""
    from vidcolor.errors import InputError

    found = list_checkpoints(run_dir)
    if not found:
        raise InputError(f"{run_dir}: no checkpoints (is it a `vidcolor train` --out folder?)")
    if step is not None:
        found = [f for f in found if f[0] == step]
        if not found:
            raise InputError(f"{run_dir}: no checkpoint at step {step}")
    return found[-1][1]


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state["numpy"] = (kind, torch.from_numpy(keys.copy()), pos, has_gauss, cached)
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy(), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: str | Path, step: int, payload: dict[str, Any], keep: int = 3) -> Path:
    """Write ``payload`` (plus format, step and RNG states) as the checkpoint of ``step``; atomic."""
    folder = checkpoint_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{step:07d}.pt"
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    data = {"format": FORMAT, "step": int(step), "rng": rng_state(), **payload}
    try:
        with open(tmp, "wb") as f:
            torch.save(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    for _, old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors and plain Python only: loaded
    with ``weights_only=True``, so a checkpoint cannot run code)."""
    from vidcolor.errors import InputError

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged file of any kind
        raise InputError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"{path}: not a vidcolor training checkpoint")
    return data


def latest_checkpoint(run_dir: str | Path) -> tuple[int, Path] | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None
