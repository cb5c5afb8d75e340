"""Import checkpoints people already have into our weights format.

Sources: pytorch-CycleGAN-and-pix2pix generators (``latest_net_G.pth`` of ``unet_256``,
``unet_128``, ``resnet_9blocks``, ``resnet_6blocks``; the published CycleGAN style generators) and
Zhang et al.'s ECCV16 / SIGGRAPH17 colorizers. A foreign file is read only with
``torch.load(weights_only=True)``: a pickle that would build arbitrary objects (a malicious
``__reduce__``) is refused, never executed.

``import_checkpoint`` detects the architecture from the keys (or takes ``arch``), checks the
state dict fits, writes ``<cache>/weights/<name>/`` and a style ``<home>/styles/<name>.toml``
so ``vidcolor run clip.mp4 --style <name>`` works right after. Registry and built-in style names
are refused (:func:`vidcolor.models.weights.reserved_name`), and existing weights or a style of the
same name are only replaced with ``overwrite``.

``pull_weights`` downloads a registry entry (:mod:`vidcolor.models.hub`) and imports it the same
way. A file without a full pinned sha256 is trusted on first use: its digest is recorded in
``<cache>/weights/checksums/<name>.sha256`` and every later download must match it. When the
download fails, the error gives the ``vidcolor models import`` command for a copy of the file
obtained another way.
"""

from __future__ import annotations

import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from vidcolor.errors import WeightsError
from vidcolor.models.hub import DownloadError, download, sha256_file
from vidcolor.models.pretrained import (
    cache_dir,
    check_state_dict,
    is_weights_folder,
    read_config,
    save_pretrained,
)
from vidcolor.models.registry import CYCLEGAN_NETG, MODELS, build_model
from vidcolor.models.weights import (
    DEFAULT_AB_SCALE,
    DEFAULT_L_NORM,
    TASKS,
    WEIGHTS,
    WeightsEntry,
    reserved_name,
)
from vidcolor.models.zhang import ZHANG_AB_SCALE, ZHANG_L_NORM

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class ImportResult:
    name: str
    folder: Path
    arch: str
    kwargs: dict[str, Any]
    task: str
    style_path: Path | None
    sha256: str


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


def _default_task(arch: str, kwargs: dict[str, Any], model: nn.Module) -> str:
    if arch in ("eccv16", "siggraph17"):
        return "colorize"
    cin, cout = kwargs.get("input_nc"), kwargs.get("output_nc")
    if (cin, cout) == (1, 2):
        return "colorize"
    if (cin, cout) == (3, 3):
        return "stylize"
    raise WeightsError(f"cannot tell the task of a {cin}->{cout} channel {arch}; colorizers map 1 -> 2 (L -> ab), "
                       "stylizers 3 -> 3 (RGB -> RGB)")


def _check_task(task: str, arch: str, kwargs: dict[str, Any]) -> None:
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


def write_style(name: str, task: str, description: str) -> Path | None:
    """Write ``<home>/styles/<name>.toml`` running the weights; None when a built-in style has that name."""
    from vidcolor.styles import builtin_dir, user_dir

    if (builtin_dir() / f"{name}.toml").is_file():
        return None  # the built-in style of that name already refers to these weights
    path = user_dir() / f"{name}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    # Per-frame generators flicker; every model style gets the temporal stabilizer (--temporal 0 turns it
    # off): a colorizer stabilizes its chroma inside its stage, a stylizer gets a Stabilize stage.
    text = (f"description = {_toml_str(description)}\n\n[[stages]]\ntype = \"{task}\"\n"
            f"weights = {_toml_str(name)}\n")
    if task == "colorize":
        text += "temporal = 0.6\n"
    else:
        text += "\n[[stages]]\ntype = \"stabilize\"\nstrength = 0.6\nmode = \"rgb\"\n"
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def check_user_name(name: str) -> None:
    """WeightsError (exit 2) unless ``name`` is a plain file name that no registry entry, shipped folder
    or built-in style uses; the message suggests another name."""
    if not _NAME.match(name):
        raise WeightsError(f"bad weights name {name!r}: use letters, digits, '-', '_' or '.' (max 64)")
    taken = reserved_name(name)
    if taken:
        raise WeightsError(f"--name {name!r} is reserved: it is {taken}; choose another name, e.g. --name my_{name}")


def import_checkpoint(path: str | Path, *, name: str, arch: str | None = None, task: str | None = None,
                      kwargs: dict[str, Any] | None = None, l_norm: tuple[float, float] | None = None,
                      ab_scale: float | None = None, meta: dict[str, Any] | None = None, overwrite: bool = False,
                      style: bool = True) -> ImportResult:
    """Convert a foreign checkpoint into ``<cache>/weights/<name>/`` (+ a style unless ``style=False``).

    Reserved names are refused (:func:`check_user_name`); existing weights or a user style of that
    name need ``overwrite``.
    """
    check_user_name(name)
    if not overwrite:
        from vidcolor.styles import user_dir

        for existing in (cache_dir() / name, *([user_dir() / f"{name}.toml"] if style else [])):
            if existing.exists():
                raise WeightsError(f"{name!r} exists already ({existing}); pass --force to replace it")
    return _convert_into(path, name=name, arch=arch, task=task, kwargs=kwargs, l_norm=l_norm, ab_scale=ab_scale,
                         meta=meta, style=style)


def _convert_into(path: str | Path, *, name: str, arch: str | None, task: str | None, kwargs: dict[str, Any] | None,
                  l_norm: tuple[float, float] | None, ab_scale: float | None, meta: dict[str, Any] | None,
                  style: bool) -> ImportResult:
    folder = cache_dir() / name
    model, final_arch, final_kwargs = convert_checkpoint(path, arch=arch, kwargs=kwargs)
    task = task or _default_task(final_arch, final_kwargs, model)
    _check_task(task, final_arch, final_kwargs)
    digest = sha256_file(path)
    config: dict[str, Any] = {"arch": final_arch, "kwargs": final_kwargs, "task": task}
    if task == "colorize":
        zhang = final_arch in ("eccv16", "siggraph17")
        config["l_norm"] = list(l_norm or (ZHANG_L_NORM if zhang else DEFAULT_L_NORM))
        config["ab_scale"] = float(ab_scale or (ZHANG_AB_SCALE if zhang else DEFAULT_AB_SCALE))
    config["meta"] = {"name": name, "imported_from": Path(path).name, "source_sha256": digest, **(meta or {})}
    save_pretrained(model, folder, config)
    desc = (meta or {}).get("description") or f"{task} with weights imported from {Path(path).name} ({final_arch})"
    style_path = write_style(name, task, desc) if style else None
    return ImportResult(name, folder, final_arch, final_kwargs, task, style_path, digest)


def import_command(entry: WeightsEntry) -> str:
    """The ``vidcolor models import`` line that converts a copy of ``entry``'s file obtained another way
    (the name is a user name: the registry name is reserved for the verified download)."""
    arch = entry.arch
    for netg, (base, fixed) in CYCLEGAN_NETG.items():  # upstream's --netG name, as their docs say
        if base == entry.arch and all(entry.kwargs.get(k) == v for k, v in fixed.items()):
            arch = netg
            break
    return f"vidcolor models import {entry.filename} --arch {arch} --task {entry.task} --name my_{entry.name}"


def _builtin_styles_using(name: str) -> list[str]:
    from vidcolor.styles import builtin_dir, read_toml

    found = []
    for path in sorted(builtin_dir().glob("*.toml")):
        stages = read_toml(path, "style").get("stages", [])
        if any(isinstance(st, dict) and st.get("weights") == name for st in stages):
            found.append(path.stem)
    return found


def checksum_file(name: str) -> Path:
    """Where the sha256 of ``name``'s first successful download is recorded (``sha256sum`` format)."""
    return cache_dir() / "checksums" / f"{name}.sha256"


def recorded_sha256(name: str) -> str | None:
    """The sha256 recorded on ``name``'s first download, or None when nothing was recorded."""
    found = _recorded(name)
    return found[0] if found else None


def _recorded(name: str) -> tuple[str, Path] | None:
    """``(sha256, where)``: the checksum file, else the ``source_sha256`` of a folder that ``pull``
    wrote before checksum files existed (an import under that name is no record of the download)."""
    path = checksum_file(name)
    try:
        text = path.read_text(encoding="utf-8").split()
    except (OSError, UnicodeDecodeError):
        text = []
    if text and re.fullmatch(r"[0-9a-fA-F]{64}", text[0]):
        return text[0].lower(), path
    folder = cache_dir() / name
    if is_weights_folder(folder):
        try:
            meta = read_config(folder).get("meta", {})
        except WeightsError:
            return None
        digest = meta.get("source_sha256")
        if meta.get("source_url") and isinstance(digest, str) and re.fullmatch(r"[0-9a-fA-F]{64}", digest):
            return digest.lower(), folder
    return None


def _record_sha256(name: str, digest: str, filename: str) -> Path:
    path = checksum_file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".part-{os.getpid()}")
    tmp.write_text(f"{digest}  {filename}\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def checksum_status(name: str) -> dict[str, Any]:
    """How ``name``'s weights are checked: ``{"kind", "sha256", "text"}``.

    kind: ``pinned`` (full sha256 in the registry), ``recorded`` (trust on first use, recorded),
    ``pending`` (a download not made yet: recorded on first download), ``local`` (imported or
    exported weights: the digest written with the folder), ``unknown`` (no such weights).
    """
    entry = WEIGHTS.get(name)
    if entry is not None and entry.sha256:
        return {"kind": "pinned", "sha256": entry.sha256, "text": f"sha256 pinned: {entry.sha256}"}
    if entry is not None:
        prefix = (f"; the published prefix {entry.sha256_prefix} (torch.hub file name) is checked too"
                  if entry.sha256_prefix else "")
        recorded = recorded_sha256(name)
        if recorded:
            return {"kind": "recorded", "sha256": recorded,
                    "text": f"sha256 recorded on first download: {recorded} (not pinned: later downloads must "
                            f"match it){prefix}"}
        return {"kind": "pending", "sha256": None,
                "text": f"not downloaded yet: checksum will be recorded on first download (not pinned){prefix}"}
    folder = cache_dir() / name
    if is_weights_folder(folder):
        meta = read_config(folder).get("meta", {})
        digest = meta.get("weights_sha256")
        text = (f"weights.safetensors sha256 recorded when written: {digest}" if digest
                else "no sha256 recorded (written by an older vidcolor)")
        if meta.get("source_sha256"):
            text += f"; imported from a file with sha256 {meta['source_sha256']}"
        return {"kind": "local", "sha256": digest, "text": text}
    return {"kind": "unknown", "sha256": None, "text": "unknown weights"}


def pull_weights(name: str, *, force: bool = False, progress: bool | None = None,
                 on_progress=None) -> tuple[ImportResult, str]:
    """Download registry entry ``name`` and convert it into the cache.

    Returns ``(result, check)``, ``check`` saying how the download was verified: ``"pinned"`` (full
    published sha256), ``"recorded"`` (matches the sha256 recorded on the first download),
    ``"prefix"`` (published prefix only; the full sha256 is recorded now) or ``"first"`` (nothing to
    check against: trusted on first use, the sha256 is recorded now; the caller says so). A file
    that does not match is refused and nothing is kept. The raw download is deleted once converted.
    """
    entry = WEIGHTS.get(name)
    if entry is None:
        raise WeightsError(f"unknown weights {name!r} (registered: {', '.join(sorted(WEIGHTS))})")
    if entry.package:
        raise WeightsError(f"weights {name!r} ship inside the vidcolor package, there is nothing to download")
    if is_weights_folder(cache_dir() / name) and not force:
        raise WeightsError(f"weights {name!r} are already in {cache_dir() / name}; pass --force to download again")
    found = None if entry.sha256 else _recorded(name)
    recorded, where = found if found else (None, None)
    raw = cache_dir() / "downloads" / str(entry.filename)
    try:
        try:
            digest = download(str(entry.url), raw, sha256=entry.sha256, sha256_prefix=entry.sha256_prefix,
                              progress=progress, on_progress=on_progress)
        except DownloadError as exc:
            hint = import_command(entry)
            styles = _builtin_styles_using(name)
            then = (f" (then: vidcolor run VIDEO --style {styles[0]} --weights my_{name})" if styles else "")
            raise WeightsError(f"cannot download {name} from {exc.url}: {exc.reason}. If you have the file, import "
                               f"it: {hint}{then}") from None
        if recorded and digest != recorded:
            raise WeightsError(f"download of {entry.url}: sha256 {digest} differs from the one recorded on the first "
                               f"download ({recorded}, {where}): the file on the server changed or was replaced; "
                               f"nothing was kept (delete {where} to trust the new file)")
        check = "pinned" if entry.sha256 else "recorded" if recorded else "prefix" if entry.sha256_prefix else "first"
        cfg = entry.config()
        result = _convert_into(raw, name=name, arch=entry.arch, task=entry.task, kwargs=entry.kwargs,
                               l_norm=cfg.get("l_norm"), ab_scale=cfg.get("ab_scale"),
                               meta={**cfg["meta"], "sha256_verified": check != "first", "sha256_check": check},
                               style=False)
        # only a file that converted is trusted; a record kept in an older pull's folder moves to its file
        if not entry.sha256 and where != checksum_file(name):
            _record_sha256(name, digest, str(entry.filename))
    finally:
        raw.unlink(missing_ok=True)
    return result, check
