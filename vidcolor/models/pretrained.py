"""Our weights format and how a name becomes a model.

A weights folder holds ``weights.safetensors`` (tensors only: loading it cannot run code) and
``config.json``::

    {"format": "vidcolor-weights/1", "arch": "unet", "kwargs": {...}, "task": "colorize",
     "l_norm": [50.0, 50.0], "ab_scale": 110.0, "meta": {...}}

``meta.weights_sha256`` is the digest of ``weights.safetensors`` written with it; loading checks the
file against it (against the registry's pinned sha256 for shipped weights) and reports the digest
of the file actually loaded as ``config["meta"]["weights_sha256"]`` (provenance).

``arch`` is a :data:`~vidcolor.models.registry.MODELS` key and ``kwargs`` its builder's keywords,
so the architecture is rebuilt from the folder alone (as diffusers' ``config.json`` +
``from_pretrained``). Colorizers: model input is ``(L - l_norm[0]) / l_norm[1]`` ``(N, 1, H, W)``,
output * ``ab_scale`` is ab. Stylizers: RGB in [-1, 1] -> RGB in [-1, 1].

Where a name is looked up (:func:`resolve_weights`), first match wins:

1. an existing local path (a weights folder);
2. the package: ``vidcolor/weights/<name>/`` (weights shipped with vidcolor);
3. the cache: ``home_dir()/weights/<name>/`` (pulled or imported weights);
4. a registry entry not present yet: a one-line WeightsError saying how to get it.
"""

from __future__ import annotations

import json
import os
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from vidcolor.errors import WeightsError
from vidcolor.models.hub import sha256_file
from vidcolor.models.registry import MODELS, build_model, count_params
from vidcolor.models.weights import FORMAT, TASKS, WEIGHTS

WEIGHTS_FILE = "weights.safetensors"
CONFIG_FILE = "config.json"


def cache_dir() -> Path:
    """``home_dir()/weights``: pulled and imported weights folders."""
    from vidcolor.paths import home_dir

    return home_dir() / "weights"


def package_dir() -> Path:
    """``vidcolor/weights``: weights folders shipped inside the package."""
    return Path(str(resources.files("vidcolor"))) / "weights"


def is_weights_folder(path: Path) -> bool:
    return path.is_dir() and (path / CONFIG_FILE).is_file() and (path / WEIGHTS_FILE).is_file()


def validate_config(config: Any, where: str) -> dict[str, Any]:
    """Check a ``config.json`` dict; WeightsError naming the field, expected and actual value."""
    if not isinstance(config, dict):
        raise WeightsError(f"{where}: config must be a JSON object, got {type(config).__name__}")
    if config.get("format") != FORMAT:
        raise WeightsError(f"{where}: format must be {FORMAT!r}, got {config.get('format')!r}")
    if config.get("arch") not in MODELS:
        raise WeightsError(f"{where}: unknown arch {config.get('arch')!r} (known: {', '.join(sorted(MODELS))})")
    if not isinstance(config.get("kwargs", {}), dict):
        raise WeightsError(f"{where}: kwargs must be an object, got {type(config.get('kwargs')).__name__}")
    if config.get("task") not in TASKS:
        raise WeightsError(f"{where}: task must be one of {TASKS}, got {config.get('task')!r}")
    if config["task"] == "colorize":
        l_norm = config.get("l_norm")
        if not (isinstance(l_norm, list) and len(l_norm) == 2 and all(isinstance(v, (int, float)) for v in l_norm)
                and l_norm[1] != 0):
            raise WeightsError(f"{where}: colorize weights need l_norm = [center, scale] (scale != 0), got {l_norm!r}")
        if not isinstance(config.get("ab_scale"), (int, float)):
            raise WeightsError(f"{where}: colorize weights need a number ab_scale, got {config.get('ab_scale')!r}")
    return config


def save_pretrained(model: nn.Module, folder: str | Path, config: dict[str, Any]) -> Path:
    """Write ``model``'s state dict and ``config`` as a weights folder, atomically.

    Everything is written into ``<folder>.part`` first and renamed at the end, so a crash never
    leaves a half folder under the real name; an existing folder is replaced. ``config`` needs
    ``arch``, ``kwargs``, ``task`` (and ``l_norm``/``ab_scale`` for colorizers); ``format``,
    ``meta.params`` and ``meta.weights_sha256`` are filled in. Returns the folder.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    config = {"format": FORMAT, **config}
    config["meta"] = {**config.get("meta", {}), "params": count_params(model)}
    validate_config(config, str(folder))
    # Tensors only, contiguous, on the CPU; safetensors refuses shared storage, which our nets never use.
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    part = folder.with_name(folder.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    try:
        save_file(tensors, str(part / WEIGHTS_FILE), metadata={"format": "pt", "arch": config["arch"]})
        config["meta"]["weights_sha256"] = sha256_file(part / WEIGHTS_FILE)
        (part / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        old = folder.with_name(folder.name + f".old-{os.getpid()}")
        if folder.exists():
            os.replace(folder, old)
        os.replace(part, folder)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise
    return folder


def read_config(folder: str | Path) -> dict[str, Any]:
    folder = Path(folder)
    path = folder / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WeightsError(f"{folder}: not a weights folder (no {CONFIG_FILE})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{path}: cannot read ({exc})") from None
    return validate_config(config, str(path))


def resolve_weights(name_or_path: str | Path) -> Path:
    """The weights folder for a name or path (see the module docstring for the search order)."""
    text = str(name_or_path)
    if not text:
        raise WeightsError("no weights given (empty name)")
    path = Path(text).expanduser()
    looks_like_path = os.sep in text or text.startswith(".") or path.suffix in (".pth", ".pt", ".ckpt", ".safetensors")
    if path.exists() and (looks_like_path or is_weights_folder(path)):
        if is_weights_folder(path):
            return path
        if path.is_file() and path.suffix in (".pth", ".pt", ".ckpt"):
            raise WeightsError(f"{path}: a foreign checkpoint; convert it first with "
                               f"`vidcolor models import {path} --name NAME --arch ARCH --task TASK`")
        raise WeightsError(f"{path}: not a weights folder (needs {CONFIG_FILE} and {WEIGHTS_FILE})")
    if looks_like_path:
        raise WeightsError(f"weights not found: {path}")
    for folder in (package_dir() / text, cache_dir() / text):
        if is_weights_folder(folder):
            return folder
    entry = WEIGHTS.get(text)
    if entry is None:
        known = sorted(set(WEIGHTS) | set(list_cached()))
        raise WeightsError(f"unknown weights {text!r} (known: {', '.join(known)}; or give a weights folder path, "
                           "or import a checkpoint with `vidcolor models import`)")
    if entry.package:
        raise WeightsError(f"weights {text!r} are not installed: {package_dir() / text} is missing (they ship with a "
                           f"later vidcolor release); meanwhile run `vidcolor models pull colorize-eccv16` and use "
                           f"--style colorize-eccv16, or `vidcolor models import CHECKPOINT --name my_{text} ...` and "
                           f"--weights my_{text}")
    raise WeightsError(f"weights {text!r} are not downloaded yet: run `vidcolor models pull {text}` "
                       f"(fetches {entry.url})")


def list_cached() -> list[str]:
    """Names of weights folders in the cache (pulled or imported)."""
    root = cache_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if is_weights_folder(p))


def load_pretrained(name_or_path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Build the architecture from ``config.json``, load ``weights.safetensors`` strictly.

    Returns ``(model in eval mode on device, config)``; ``config["meta"]["weights_sha256"]`` is the
    sha256 of the file loaded. Missing/corrupt files, a file whose sha256 differs from the pinned or
    recorded one, an unknown arch and a state dict that does not fit raise WeightsError (one line,
    naming the folder).
    """
    import hashlib

    from safetensors import SafetensorError
    from safetensors.torch import load as load_bytes

    folder = resolve_weights(name_or_path)
    config = read_config(folder)
    try:
        model = build_model(config["arch"], **config.get("kwargs", {}))
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"{folder}: cannot build {config['arch']!r}: {exc}") from None
    path = folder / WEIGHTS_FILE
    try:
        data = path.read_bytes()  # read once: hashed and parsed from the same bytes
        digest = hashlib.sha256(data).hexdigest()
        check_weights_digest(folder, config, digest)
        state = load_bytes(data)
    except (SafetensorError, OSError) as exc:
        raise WeightsError(f"{path}: cannot read ({exc})") from None
    del data
    check_state_dict(model, state, str(folder))
    model.load_state_dict(state, strict=True)
    config.setdefault("meta", {}).update(folder=str(folder), weights_sha256=digest)
    return model.to(device).eval(), config


def expected_weights_digest(folder: Path, config: dict[str, Any]) -> tuple[str | None, str]:
    """``(sha256 the folder's weights.safetensors must have, "pinned" | "recorded")``: the registry's
    digest for weights shipped in the package, else the one ``save_pretrained`` wrote in the config
    (None for folders written without one)."""
    entry = WEIGHTS.get(folder.name)
    if entry is not None and entry.package and entry.sha256:
        try:
            shipped = folder.resolve() == (package_dir() / folder.name).resolve()
        except OSError:
            shipped = False
        if shipped:
            return entry.sha256, "pinned"
    recorded = config.get("meta", {}).get("weights_sha256")
    return (recorded if isinstance(recorded, str) else None), "recorded"


def check_weights_digest(folder: Path, config: dict[str, Any], digest: str) -> None:
    expected, how = expected_weights_digest(folder, config)
    if expected and digest.lower() != expected.lower():
        where = "in vidcolor's weights registry" if how == "pinned" else f"in {folder / CONFIG_FILE}"
        raise WeightsError(f"{folder / WEIGHTS_FILE}: sha256 {digest} differs from the one {how} {where} "
                           f"({expected}): the file was changed or damaged after it was written; reinstall or "
                           "pull/import/export these weights again")


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: str, arch: str | None = None) -> None:
    """WeightsError unless ``state`` has exactly ``model``'s keys and shapes.

    The message counts missing keys, unexpected keys and shape mismatches and names a few of
    each, which is usually enough to see that a checkpoint is for another architecture.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if not (missing or unexpected or shapes):
        return

    def few(items: list[str], n: int = 3) -> str:
        return ", ".join(items[:n]) + (", ..." if len(items) > n else "")

    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys ({few(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys ({few(unexpected)})")
    if shapes:
        parts.append(f"{len(shapes)} shape mismatches ({few(shapes, 2)})")
    what = f" for arch {arch!r}" if arch else ""
    raise WeightsError(f"{source}: state dict does not fit the model{what}: " + "; ".join(parts))
