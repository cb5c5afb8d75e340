"""The settings of a run, built once: ``make_settings(style, **options) -> RunSettings``.

``vidcolor run``, ``vidcolor batch`` and the Python API (``pipelines.run.run``) all build a frozen
``RunSettings`` with ``make_settings``, which resolves the style once and refuses an option that no
stage of the style reads (``Style.check``). Plain runs, resumable runs, batch workers and Ray tasks
get that object unchanged (it pickles). Torch-free, like the CLI's option parsing.

Adding an encoder option: a field of ``EncoderSettings`` (and its effect in ``codec_options``) and
the click option of the same name in ``vidcolor.cli.common.processing_options``; the manifests'
signature, the provenance tag and the writers take it from ``EncoderSettings``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from vidcolor.errors import InputError
from vidcolor.styles import Style, get_style

ENCODERS = ("pyav", "ffmpeg")
# The stage overrides the CLI sets (``--lut``, ``--temporal``...): the keys of ``StageContext.overrides``.
OVERRIDE_OPTIONS = ("lut", "temporal", "flow", "render_size", "weights", "precision", "compile", "keep_color",
                    "keyframes", "hints", "mask")


class FrozenMap(Mapping):
    """A read-only mapping that pickles (``types.MappingProxyType`` does not), for frozen settings."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        object.__setattr__(self, "_data", dict(data or {}))

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("FrozenMap is read-only")

    def __getstate__(self) -> dict[str, Any]:
        return self._data

    def __setstate__(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "_data", dict(state))

    def __hash__(self) -> int:
        return hash(tuple(sorted(self._data.items(), key=lambda kv: kv[0])))

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


@dataclass(frozen=True)
class EncoderSettings:
    """How frames are encoded: ``backend`` (pyav: in-process; ffmpeg: the command-line tool), the
    codec, its ``crf``, the output pixel format (None: the writer's choice) and the ``-e`` options."""

    backend: str = "pyav"
    codec: str = "libx264"
    crf: int | None = 18
    pix_fmt: str | None = None
    options: FrozenMap = field(default_factory=FrozenMap)

    def __post_init__(self) -> None:
        if self.backend not in ENCODERS:
            raise InputError(f"unknown encoder {self.backend!r} (use {' or '.join(ENCODERS)})")
        if not isinstance(self.options, FrozenMap):
            object.__setattr__(self, "options", FrozenMap(self.options))

    def codec_options(self) -> dict[str, str]:
        """The options the encoder is opened with besides codec, crf and pix_fmt (``-e KEY=VALUE``)."""
        return dict(self.options)

    def writer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``VideoWriter`` and ``FFmpegWriter`` for these settings."""
        return {"codec": self.codec, "crf": self.crf, "pix_fmt": self.pix_fmt, "options": self.codec_options()}

    def signature(self) -> dict[str, Any]:
        """The part of a job's identity that changes the encoding (manifests, work folders)."""
        return {"encoder": self.backend, "codec": self.codec, "crf": self.crf, "pix_fmt": self.pix_fmt,
                "encoder_options": self.codec_options()}

    def tag(self) -> dict[str, Any]:
        """The ``vidcolor_encoder`` provenance tag written into the output."""
        from vidcolor.io.writer_base import encoder_tag  # PyAV: only when a run writes

        return encoder_tag(self.backend, self.codec, self.crf, self.codec_options())


@dataclass(frozen=True)
class RunSettings:
    """Everything besides the input and output paths that decides a run; build it with ``make_settings``.

    ``overrides``: CLI settings the style's stages read (``StageContext.overrides``); ``device``:
    auto, cpu, cuda or cuda:N; ``chunk_size``: frames per stage call; ``overwrite``: replace an
    existing output; ``allow_truncated``: encode what decodes of a damaged input; ``resumable``:
    crash-safe segments (None: for long inputs, ``segments.is_long``); ``fresh``: a resumable run
    discards an earlier run's work folder."""

    style: Style
    overrides: FrozenMap = field(default_factory=FrozenMap)
    device: str | None = None
    encoder: EncoderSettings = field(default_factory=EncoderSettings)
    chunk_size: int = 4
    overwrite: bool = False
    allow_truncated: bool = False
    resumable: bool | None = None
    fresh: bool = False

    def signature(self) -> dict[str, Any]:
        """What changes the pictures or the encoding (not the device, chunk size or ``allow_truncated``),
        shared by batch manifests and resumable-run work folders. The style's stage tables are included,
        not only its name, so editing a style file counts as a change; so does editing a mask file
        (``masks``: the fingerprint of each, only when the run has masks)."""
        from vidcolor.masks import mask_fingerprint

        masks = {f: mask_fingerprint(f) for f in self.style.mask_files(dict(self.overrides))}
        return {"style": self.style.name, "stages": self.style.stages, "overrides": dict(self.overrides),
                **self.encoder.signature(), **({"masks": masks} if masks else {})}

    def tags(self, stages: list[Any]) -> dict[str, Any]:
        """The provenance tags of an output made by ``stages`` (built from these settings)."""
        from vidcolor import __version__

        return {"version": __version__, "style": self.style.name, "stages": [s.describe() for s in stages],
                "encoder": self.encoder.tag()}


_ENCODER_FIELDS = {f.name for f in fields(EncoderSettings)}
_RUN_FIELDS = {f.name for f in fields(RunSettings)} - {"style", "overrides", "encoder"}
# The Python API's and the CLI's names for two encoder fields (``encoder="ffmpeg"``, ``encoder_options={...}``).
_ENCODER_ALIASES = {"encoder": "backend", "encoder_options": "options"}


def make_settings(style: str | Style | RunSettings = "noir", **options: Any) -> RunSettings:
    """The one builder of ``RunSettings``: from a style (name, path or ``Style``) and flat options, the
    names of the CLI's parameters: stage overrides (``lut``, ``temporal``, ``flow``, ``render_size``,
    ``weights``, ``precision``, ``compile``, ``keep_color``, ``mask``: the whole style inside a mask
    file, or a dict ``overrides``), ``EncoderSettings`` fields (``encoder`` or
    ``backend``, ``codec``, ``crf``, ``pix_fmt``, ``encoder_options`` or ``options``...) and the other
    ``RunSettings`` fields. None (and False for flags) means not asked for. Raises ``InputError`` for
    an unknown style, a bad style table or an option that no stage of the style reads, ``TypeError``
    for an unknown keyword. A ``RunSettings`` is returned as it is (no options allowed with it)."""
    if isinstance(style, RunSettings):
        if options:
            raise TypeError(f"settings given as RunSettings: unexpected options {', '.join(sorted(options))}")
        return style
    style_obj = style if isinstance(style, Style) else get_style(style)
    overrides = dict(options.pop("overrides", None) or {})
    encoder: dict[str, Any] = {}
    run: dict[str, Any] = {}
    unknown = []
    for key, value in options.items():
        if key in OVERRIDE_OPTIONS:
            if key == "mask" and value:  # absolute: batch workers and work folders name the same file
                value = os.path.abspath(os.path.expanduser(os.fspath(value)))
            if value is not None and value is not False:
                overrides[key] = os.fspath(value) if key in ("keyframes", "hints", "lut") and isinstance(
                    value, os.PathLike) else value
        elif key in _ENCODER_FIELDS or key in _ENCODER_ALIASES:
            name = _ENCODER_ALIASES.get(key, key)
            if name == "options":
                value = dict(value or {})
            if value is not None or name in ("crf", "pix_fmt"):
                encoder[name] = value
        elif key in _RUN_FIELDS:
            run[key] = value
        else:
            unknown.append(key)
    if unknown:
        raise TypeError(f"make_settings(): unknown option(s) {', '.join(sorted(unknown))}")
    style_obj.check(overrides)  # a bad style value or an option the style does not read: before any work
    return RunSettings(style=style_obj, overrides=FrozenMap(overrides), encoder=EncoderSettings(**encoder), **run)

