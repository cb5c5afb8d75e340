"""Install weights people bring into the weights cache: imported checkpoints and registry downloads.

``import_checkpoint`` converts a foreign checkpoint (:mod:`vidcolor.models.convert`: architecture
from the keys or ``arch``, checked to fit), writes ``<cache>/weights/<name>/`` and a style
``<home>/styles/<name>.toml`` (:func:`vidcolor.user_styles.write_user_style`) so
``vidcolor run clip.mp4 --style <name>`` works right after. Registry and built-in style names
are refused (:func:`vidcolor.user_styles.check_user_name`), and existing weights or a style of the
same name are only replaced with ``overwrite``.

``pull_weights`` downloads a registry entry (:mod:`vidcolor.models.hub`) and imports it the same
way. A file without a full pinned sha256 is trusted on first use: its digest is recorded in
``<cache>/weights/checksums/<name>.sha256`` and every later download must match it. When the
download fails, the error gives the ``vidcolor models import`` command for a copy of the file
obtained another way.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidcolor.errors import WeightsError
from vidcolor.models.convert import check_task, convert_checkpoint, default_task
from vidcolor.models.hub import DownloadError, download, sha256_file
from vidcolor.models.pretrained import cache_dir, is_weights_folder, read_config, save_pretrained
from vidcolor.models.registry import CYCLEGAN_NETG
from vidcolor.models.weights import DEFAULT_AB_SCALE, DEFAULT_L_NORM, WEIGHTS, WeightsEntry
from vidcolor.models.zhang import ZHANG_AB_SCALE, ZHANG_L_NORM
from vidcolor.user_styles import check_user_name, user_style_path, write_user_style


@dataclass(frozen=True)
class ImportResult:
    name: str
    folder: Path
    arch: str
    kwargs: dict[str, Any]
    task: str
    style_path: Path | None
    sha256: str


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
        for existing in (cache_dir() / name, *([user_style_path(name)] if style else [])):
            if existing.exists():
                raise WeightsError(f"{name!r} exists already ({existing}); pass --force to replace it")
    return _convert_into(path, name=name, arch=arch, task=task, kwargs=kwargs, l_norm=l_norm, ab_scale=ab_scale,
                         meta=meta, style=style)


def _convert_into(path: str | Path, *, name: str, arch: str | None, task: str | None, kwargs: dict[str, Any] | None,
                  l_norm: tuple[float, float] | None, ab_scale: float | None, meta: dict[str, Any] | None,
                  style: bool) -> ImportResult:
    folder = cache_dir() / name
    model, final_arch, final_kwargs = convert_checkpoint(path, arch=arch, kwargs=kwargs)
    task = task or default_task(final_arch, final_kwargs, model)
    check_task(task, final_arch, final_kwargs)
    digest = sha256_file(path)
    config: dict[str, Any] = {"arch": final_arch, "kwargs": final_kwargs, "task": task}
    if task == "colorize":
        zhang = final_arch in ("eccv16", "siggraph17")
        config["l_norm"] = list(l_norm or (ZHANG_L_NORM if zhang else DEFAULT_L_NORM))
        config["ab_scale"] = float(ab_scale or (ZHANG_AB_SCALE if zhang else DEFAULT_AB_SCALE))
    config["meta"] = {"name": name, "imported_from": Path(path).name, "source_sha256": digest, **(meta or {})}
    save_pretrained(model, folder, config)
    desc = (meta or {}).get("description") or f"{task} with weights imported from {Path(path).name} ({final_arch})"
    style_path = write_user_style(name, task=task, description=desc) if style else None
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
