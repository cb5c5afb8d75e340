"""Styles written for a user's own weights: ``vidcolor models import`` and ``vidcolor train export``.

Both write ``<home>/styles/<name>.toml`` with :func:`write_user_style`, so an imported model and
an exported one get the same stages for the same task, and both check the name with
:func:`check_user_name`. A written style::

    description = "..."

    [[stages]]
    type = "colorize"
    weights = "my_model"
    temporal = 0.6
"""

from __future__ import annotations

import re
from pathlib import Path

from vidcolor.errors import WeightsError

# a plain file name on every file system: it names the weights folder and the style file
NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

# Per-frame generators flicker, so a model style is stabilized unless asked not to (0 = none).
DEFAULT_STABILIZE = 0.6


def check_user_name(name: str) -> None:
    """WeightsError (exit 2) unless ``name`` is a plain file name that no registry entry, shipped folder
    or built-in style uses; the message suggests another name."""
    from vidcolor.models.weights import reserved_name

    if not NAME_RULE.match(name):
        raise WeightsError(f"bad weights name {name!r}: use letters, digits, '-', '_' or '.' (max 64)")
    taken = reserved_name(name)
    if taken:
        raise WeightsError(f"--name {name!r} is reserved: it is {taken}; choose another name, e.g. --name my_{name}")


def user_style_path(name: str) -> Path:
    """Where the user style ``name`` lives: ``<home>/styles/<name>.toml``."""
    from vidcolor.styles import user_dir

    return user_dir() / f"{name}.toml"


def _stabilizer_lines(task: str, strength: float) -> list[str]:
    """The stabilizer each task's style runs: a colorizer blends its chroma inside its own stage
    (``temporal``, at the working size); a stylizer's RGB output gets a Stabilize stage after it."""
    if task == "colorize":
        return [f"temporal = {strength}"]
    return ["", "[[stages]]", 'type = "stabilize"', f"strength = {strength}", 'mode = "rgb"']


def style_text(task: str, weights: str, description: str, *, render_size: int | None = None,
               stabilize: float = DEFAULT_STABILIZE, factor: int | None = None) -> str:
    """The TOML of a style that runs ``weights`` for ``task`` (``"colorize"`` or ``"stylize"``), then
    the task's stabilizer at strength ``stabilize`` in [0, 1] (0: none); for ``"superres"`` an
    ``upscale`` stage (method ``net``, ``factor`` the network's scale) alone; for ``"restoration"`` a
    ``restore_net`` stage alone."""
    if task == "restoration":
        return "\n".join([f"description = {_toml_str(description)}", "", "[[stages]]", 'type = "restore_net"',
                          f"weights = {_toml_str(weights)}"]) + "\n"
    if task == "superres":
        return "\n".join([f"description = {_toml_str(description)}", "", "[[stages]]", 'type = "upscale"',
                          'method = "net"', f"factor = {int(factor or 2)}", f"weights = {_toml_str(weights)}"]) + "\n"
    if task not in ("colorize", "stylize"):
        raise ValueError(f"task must be 'colorize', 'stylize', 'superres' or 'restoration', got {task!r}")
    if not 0.0 <= stabilize <= 1.0:
        raise ValueError(f"stabilize must be in [0, 1], got {stabilize}")
    lines = [f"description = {_toml_str(description)}", "", "[[stages]]", f'type = "{task}"',
             f"weights = {_toml_str(weights)}"]
    if render_size is not None:
        lines.append(f"render_size = {int(render_size)}")
    if stabilize > 0:
        lines += _stabilizer_lines(task, float(stabilize))
    return "\n".join(lines) + "\n"


def write_user_style(name: str, *, task: str, description: str, weights: str | None = None,
                     render_size: int | None = None, stabilize: float = DEFAULT_STABILIZE,
                     factor: int | None = None) -> Path:
    """Write ``<home>/styles/<name>.toml`` (see :func:`style_text`; ``weights`` defaults to ``name``)
    atomically, replacing a style of that name; returns its path. The caller checks the name
    (:func:`check_user_name`) and whether replacing is allowed."""
    path = user_style_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")  # not *.toml: never listed as a style while half written
    tmp.write_text(style_text(task, weights or name, description, render_size=render_size, stabilize=stabilize,
                              factor=factor), encoding="utf-8")
    tmp.replace(path)
    return path


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'
