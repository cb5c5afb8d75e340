"""Styles: named presets, each an ordered list of stages with their parameters, kept as TOML.

Built-in styles live in ``configs/styles/*.toml`` (installed as ``vidcolor.configs``); users add
their own in ``$VIDCOLOR_HOME/styles/`` or pass a path (``--style my_look.toml``). A style file::

    description = "Monochrome film look"
    [[stages]]
    type = "grade"
    preset = "noir"
    contrast = 5.0
    mask = "face.png"      # any stage: only inside this mask (vidcolor.masks), relative to the style file
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from vidcolor.errors import InputError
from vidcolor.paths import home_dir

if TYPE_CHECKING:  # the stages import torch: only when a style is built
    from vidcolor.stages.base import Stage, StageContext


@dataclass(frozen=True)
class Style:
    name: str
    description: str
    stages: list[dict[str, Any]] = field(default_factory=list)
    path: str | None = None

    def check(self, overrides: dict[str, Any] | None = None) -> None:
        """Raise a one-line ``InputError`` for a stage table with an unknown type, an unknown key or a
        bad value (naming the file, the stage and the key), or for an override (a CLI setting such as
        ``temporal``) that no stage of this style reads: a setting is never ignored without a word."""
        from vidcolor.stages import STAGES  # the package: importing it registers the built-in stages

        from vidcolor.masks import check_mask

        where = self.path or f"style {self.name!r}"
        read: set[str] = set()
        for i, spec in enumerate(self.stages, 1):
            table = {k: v for k, v in spec.items() if k not in ("type", "mask")}
            kind = spec.get("type")
            if kind not in STAGES:
                raise InputError(f"{where}: [[stages]] {i}: unknown stage type {kind!r} "
                                 f"(known: {', '.join(sorted(STAGES))})")
            try:
                STAGES[kind].options_from(table)
                if "mask" in spec:
                    if not isinstance(spec["mask"], str):
                        raise InputError(f"mask must be a file name, got {spec['mask']!r}")
                    check_mask(spec["mask"], self.folder)
            except InputError as exc:
                raise InputError(f"{where}: [[stages]] {i} ({kind}): {exc}") from None
            read |= STAGES[kind].reads_overrides(table)
        if (overrides or {}).get("mask"):
            check_mask(overrides["mask"])  # type: ignore[index]
        for key, value in (overrides or {}).items():
            if value is None or value is False or key in read or key == "mask":  # None / False: not asked for
                continue
            users = [cls.override_use(key) for _, cls in sorted(STAGES.items()) if key in cls.overrides]
            kinds = ", ".join(str(st.get("type")) for st in self.stages)
            option = "--" + key.replace("_", "-")
            raise InputError(f"{option} does not apply to style {self.name!r} (its stages: {kinds})"
                             + (f"; it applies to styles with {' or '.join(users)}" if users else ""))

    @property
    def folder(self) -> str | None:
        """The style file's folder, which relative paths in it (``lut``, ``mask``) start from."""
        return str(Path(self.path).parent) if self.path else None

    def mask_files(self, overrides: dict[str, Any] | None = None) -> list[str]:
        """The masks of the style's stage tables and the whole-style ``mask`` override, as absolute paths."""
        from vidcolor.masks import resolve

        found = [str(resolve(spec["mask"], self.folder)) for spec in self.stages if isinstance(spec.get("mask"), str)]
        return found + ([str(resolve(overrides["mask"]))] if (overrides or {}).get("mask") else [])

    def build(self, ctx: StageContext) -> list[Stage]:
        """The style's stages, after ``check`` (so a bad value or an unused override fails before any
        model is loaded or frame decoded). A stage table with a ``mask`` becomes that stage inside the
        mask (``Masked``), and the ``mask`` override puts the whole style inside one."""
        from vidcolor.masks import load_mask
        from vidcolor.stages import StageContext, build_stage
        from vidcolor.stages.masked import Masked

        self.check(ctx.overrides)
        ctx = StageContext(device=ctx.device, overrides=ctx.overrides, style_dir=self.folder)
        stages: list[Stage] = []
        for spec in self.stages:
            stage = build_stage({k: v for k, v in spec.items() if k != "mask"}, ctx)
            stages.append(Masked([stage], load_mask(spec["mask"], self.folder)) if "mask" in spec else stage)
        if ctx.overrides.get("mask"):
            stages = [Masked(stages, load_mask(ctx.overrides["mask"]))]
        return stages


def builtin_dir() -> Path:
    return Path(str(resources.files("vidcolor.configs").joinpath("styles")))


def user_dir() -> Path:
    return home_dir() / "styles"


def read_toml(path: Path, kind: str) -> dict[str, Any]:
    """A TOML file as a dict; a missing, unreadable or malformed file is a one-line ``InputError``
    naming the ``kind`` of file (``"style"``, ``"recipe"``)."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{kind} file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read {kind} ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: invalid TOML ({exc})") from None


def load_style_file(path: str | Path, name: str | None = None) -> Style:
    path = Path(path)
    data = read_toml(path, "style")
    stages = data.get("stages")
    if not isinstance(stages, list) or not stages or not all(isinstance(s, dict) and "type" in s for s in stages):
        raise InputError(f"{path}: a style needs one or more [[stages]] tables, each with a 'type'")
    return Style(name=name or data.get("name") or path.stem, description=str(data.get("description", "")),
                 stages=stages, path=str(path))


def available_styles() -> dict[str, Style]:
    """All named styles: built-in first, then user styles (which may override built-ins)."""
    found: dict[str, Style] = {}
    for folder in (builtin_dir(), user_dir()):
        if folder.is_dir():
            for f in sorted(folder.glob("*.toml")):
                found[f.stem] = load_style_file(f, name=f.stem)
    return found


def get_style(name_or_path: str) -> Style:
    """A style by name (built-in or user) or by path to a ``.toml`` file."""
    if name_or_path.endswith(".toml") or os.sep in name_or_path:
        return load_style_file(name_or_path)
    styles = available_styles()
    if name_or_path not in styles:
        raise InputError(f"unknown style {name_or_path!r} (known: {', '.join(sorted(styles))}; "
                         "or pass a path to a .toml file)")
    return styles[name_or_path]
