"""Read checkpoints people already have and convert them into our models.

Sources: pytorch-CycleGAN-and-pix2pix generators (``latest_net_G.pth`` of ``unet_256``,
``unet_128``, ``resnet_9blocks``, ``resnet_6blocks``; the published CycleGAN style generators) and
Zhang et al.'s ECCV16 / SIGGRAPH17 colorizers. A foreign file is read only with
``torch.load(weights_only=True)``: a pickle that would build arbitrary objects (a malicious
``__reduce__``) is refused, never executed. The architecture is detected from the keys (or named),
and the state dict is checked to fit before it is loaded. Installing the result into the weights
cache is :mod:`vidcolor.models.importers`.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from vidcolor.errors import WeightsError
from vidcolor.models.pretrained import check_state_dict
from vidcolor.models.registry import CYCLEGAN_NETG, MODELS, build_model
from vidcolor.models.weights import TASKS


def load_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """A foreign ``.pth`` -> flat ``{key: tensor}``, loaded with ``weights_only=True`` only.

    Unwraps the usual containers (``state_dict``, ``model``, ``netG``), strips DataParallel's
    ``module.`` prefix and upstream's ``_metadata``.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch wraps every failure in the same preamble; the line that says what happened is inside
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        said = [line for line in lines if not line.startswith(("Weights only load failed", "Please file",
                                                                 "Check the documentation"))]
        detail = (said or lines or [type(exc).__name__])[0]
        with open(path, "rb") as f:
            pickled = f.read(1) == b"\x80"  # a bare pickle (protocol >= 2) rather than torch's zip or junk
        if "GLOBAL" not in detail and not pickled:  # no Python objects in sight: junk or a damaged file
            raise WeightsError(f"{path}: not a readable PyTorch checkpoint ({detail[:160]})") from None
        raise WeightsError(f"{path}: refused: the file holds Python objects, not only tensors, and vidcolor loads "
                           f"checkpoints with torch.load(weights_only=True) ({detail[:160]})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise WeightsError(f"{path}: not a readable PyTorch checkpoint ({str(exc).splitlines()[0][:160]})") from None
    for key in ("state_dict", "model", "netG"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not obj:
        raise WeightsError(f"{path}: expected a state dict (a mapping of names to tensors), got {type(obj).__name__}")
    state = {}
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            raise WeightsError(f"{path}: entry {k!r} is a {type(v).__name__}, not a tensor")
        state[k[len("module."):] if k.startswith("module.") else k] = v
    return state


def patch_instance_norm_keys(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Adapt norm buffers across PyTorch versions, as upstream ``BaseModel.__patch_instance_norm_state_dict``.

    Checkpoints saved with ``InstanceNorm2d(track_running_stats=True)`` (pytorch-CycleGAN-and-pix2pix
    before 2018, e.g. the published style generators) carry ``running_mean``/``running_var``/
    ``num_batches_tracked`` that our stat-free instance norms do not have: dropped. Batch norms
    saved before PyTorch 0.4.1 lack ``num_batches_tracked``: filled with 0 (unused in eval mode).
    """
    modules = dict(model.named_modules())
    out = {}
    for key, value in state.items():
        prefix, _, leaf = key.rpartition(".")
        module = modules.get(prefix)
        if (isinstance(module, nn.InstanceNorm2d) and leaf in ("running_mean", "running_var", "num_batches_tracked")
                and getattr(module, leaf, None) is None):
            continue
        out[key] = value
    for key in model.state_dict():
        if key.endswith(".num_batches_tracked") and key not in out:
            out[key] = torch.tensor(0, dtype=torch.long)
    return out


def parse_arch(arch: str) -> tuple[str, dict[str, Any]]:
    """``"resnet_9blocks"`` -> ``("resnet", {"n_blocks": 9})``; our MODELS keys pass through."""
    if arch in CYCLEGAN_NETG:
        base, kwargs = CYCLEGAN_NETG[arch]
        return base, dict(kwargs)
    if arch in MODELS:
        return arch, {}
    raise WeightsError(f"unknown arch {arch!r} (known: {', '.join(sorted(MODELS) + sorted(CYCLEGAN_NETG))})")


def detect_arch(state: dict[str, torch.Tensor]) -> tuple[str, dict[str, Any]]:
    """Guess ``(arch, kwargs)`` from key names and shapes; WeightsError when nothing matches."""
    if "model1.0.weight" in state and "model_out.weight" in state and state["model1.0.weight"].shape[1] == 1:
        return "eccv16", {}
    if "model1.0.weight" in state and "model10up.0.weight" in state:
        return "siggraph17", {"classes": int(state["model_class.0.weight"].shape[0])}
    if "model.model.0.weight" in state:  # U-Net: model.model = outermost block
        first = state["model.model.0.weight"]  # (ngf, input_nc, 4, 4)
        levels = [k for k in state if re.fullmatch(r"model\.model\.1\.(model\.3\.)*model\.1\.weight", k)]
        out = state.get("model.model.3.weight")  # outermost ConvTranspose2d (2*ngf, output_nc, 4, 4)
        if out is None:
            raise WeightsError("U-Net checkpoint without its output layer model.model.3.weight")
        norm = "instance" if "model.model.1.model.1.bias" in state else "batch"
        return "unet", {"input_nc": int(first.shape[1]), "output_nc": int(out.shape[1]), "num_downs": 1 + len(levels),
                        "ngf": int(first.shape[0]), "norm": norm}
    if "model.1.weight" in state and state["model.1.weight"].dim() == 4 and state["model.1.weight"].shape[-1] == 7:
        first = state["model.1.weight"]  # (ngf, input_nc, 7, 7)
        blocks = {int(m.group(1)) for k in state if (m := re.match(r"model\.(\d+)\.conv_block\.", k))}
        convs = [(int(k.split(".")[1]), v) for k, v in state.items()
                 if re.fullmatch(r"model\.\d+\.weight", k) and v.dim() == 4 and v.shape[-1] == 7]
        last = max(convs, key=lambda kv: kv[0])[1]  # final 7x7 conv (output_nc, ngf, 7, 7)
        norm = "instance" if "model.1.bias" in state else "batch"
        return "resnet", {"input_nc": int(first.shape[1]), "output_nc": int(last.shape[0]), "ngf": int(first.shape[0]),
                          "norm": norm, "n_blocks": len(blocks)}
    sample = ", ".join(list(state)[:3])
    raise WeightsError(f"cannot tell the architecture from the keys (first keys: {sample}); pass --arch "
                       f"({', '.join(sorted(MODELS) + sorted(CYCLEGAN_NETG))})")


def convert_checkpoint(path: str | Path, *, arch: str | None = None,
                       kwargs: dict[str, Any] | None = None) -> tuple[nn.Module, str, dict[str, Any]]:
    """Load a foreign checkpoint into our model: ``(model, arch, kwargs)``.

    With ``arch`` given, hyperparameters the name does not fix (channels, ngf, norm, blocks) are
    still read from the keys when they are for the same family, so ``--arch unet_256`` works for a
    user's 3-channel instance-norm model; a checkpoint of another family fails with the key diff.
    """
    state = load_checkpoint(path)
    if arch is None:
        final_arch, final_kwargs = detect_arch(state)
    else:
        final_arch, named = parse_arch(arch)
        try:
            detected_arch, detected = detect_arch(state)
        except WeightsError:
            detected_arch, detected = None, {}
        final_kwargs = {**(detected if detected_arch == final_arch else {}), **named}
    final_kwargs.update(kwargs or {})
    try:
        model = build_model(final_arch, **final_kwargs)
    except (TypeError, ValueError) as exc:
        raise WeightsError(f"{path}: cannot build {final_arch!r} with {final_kwargs}: {exc}") from None
    state = patch_instance_norm_keys(state, model)
    check_state_dict(model, state, str(path), arch=arch or final_arch)
    model.load_state_dict(state, strict=True)
    return model.eval(), final_arch, final_kwargs


def default_task(arch: str, kwargs: dict[str, Any], model: nn.Module) -> str:
    if arch in ("eccv16", "siggraph17"):
        return "colorize"
    cin, cout = kwargs.get("input_nc"), kwargs.get("output_nc")
    if (cin, cout) == (1, 2):
        return "colorize"
    if (cin, cout) == (3, 3):
        return "stylize"
    raise WeightsError(f"cannot tell the task of a {cin}->{cout} channel {arch}; colorizers map 1 -> 2 (L -> ab), "
                       "stylizers 3 -> 3 (RGB -> RGB)")


def check_task(task: str, arch: str, kwargs: dict[str, Any]) -> None:
    if task not in TASKS:
        raise WeightsError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if arch in ("eccv16", "siggraph17"):
        if task != "colorize":
            raise WeightsError(f"{arch} is a colorizer; task must be 'colorize', got {task!r}")
        return
    want = (1, 2) if task == "colorize" else (3, 3)
    got = (kwargs.get("input_nc"), kwargs.get("output_nc"))
    if got != want:
        raise WeightsError(f"task {task!r} needs a {want[0]}->{want[1]} channel generator, this one is {got[0]}->{got[1]}")
