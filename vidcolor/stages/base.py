"""The stage contract: a chunk of frames in, a chunk of frames out, with state that crosses chunks.

A pipeline is ``reader -> Stage 1 ... Stage n -> writer``. Stages see chunks of consecutive frames
(``Chunk.frames`` is ``(T, 3, H, W)`` float32 RGB in [0, 1], on the stage's device; or uint8 RGB on
CPU for a style whose stages all declare ``accepts_uint8``; or ``(T, 1, H, W)`` uint8 luma for a
style whose stages all declare ``accepts_grey``, see ``pipelines/run.py``) and must give
the same result however a video is cut into chunks: anything a stage needs from earlier frames
(previous output for the stabilizer, a grain RNG, ...) lives in its state and is exposed through
``state_dict()`` / ``load_state_dict()`` so resumable runs can restore it.

Stages are registered by name with ``@register_stage("grade")`` and built from a style's TOML
table with ``build_stage(spec, ctx)``. Each stage class declares its typed options, a frozen
dataclass (``Options``, a ``StageOptions``) with one field per key of its table and the type and
range of each (``option(...)``): ``Stage.options_from`` builds it from the stage's own table with the
CLI settings it reads (``ctx.overrides``, declared in ``overrides``) merged over it, refusing unknown
keys by name, so a style can also refuse the settings none of its stages reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

import torch

from vidcolor.errors import InputError


@dataclass
class Chunk:
    """``frames``: (T, 3, H, W) float32 RGB in [0, 1] (uint8 RGB, or (T, 1, H, W) uint8 luma, for stages
    that accept it); ``index``: number of the first frame in the video;
    ``pts``: presentation timestamps (in the video stream's time base), one per frame;
    ``source``: the decoded input frames of this chunk, (T, 3, H, W), untouched by earlier stages and
    at the input's size (after a stage that resizes, ``upscale``, ``frames`` are larger than it)
    (temporal stages compute flow and scene cuts on the input, not on a previous stage's output);
    ``yuv``: set by the run when the writer takes yuv420p planes as they are, to their coding
    (swscale matrix code, full range): a stage may then give ``frames`` as (T, 1, H * 3 / 2, W)
    uint8 planes in that coding (``vidcolor.io.grey.i420_from_luma``; the Colorize stage does,
    from luma input); ``ahead``: the decoded input frames that follow the chunk, in ``source``'s
    format, as many as the style's stages look ahead (``Stage.lookahead``; fewer at the end of the
    film), or None when no stage looks ahead."""

    frames: torch.Tensor
    index: int
    pts: list[int] = field(default_factory=list)
    source: torch.Tensor | None = None
    yuv: tuple[int, bool] | None = None
    ahead: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.frames.dim() != 4 or self.frames.shape[1] not in (1, 3):
            raise ValueError(f"Chunk.frames must have shape (T, 3, H, W) (or (T, 1, H, W) grey), "
                             f"got {tuple(self.frames.shape)}")
        if self.pts and len(self.pts) != self.frames.shape[0]:
            raise ValueError(f"Chunk has {self.frames.shape[0]} frames but {len(self.pts)} pts")

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def with_frames(self, frames: torch.Tensor) -> Chunk:
        return replace(self, frames=frames)


@dataclass(frozen=True)
class StageContext:
    """What every stage may need from the run, besides its own parameters.

    ``overrides`` holds CLI settings that stages may honour (``lut``, ``temporal``, ``render_size``,
    ``flow``, ``weights``...); each stage class declares the keys it reads in ``Stage.overrides``.
    """

    device: torch.device = torch.device("cpu")  # noqa: RUF009  (immutable)
    overrides: dict[str, Any] = field(default_factory=dict)
    style_dir: str | None = None  # folder of the style file, for resolving relative paths


@dataclass(frozen=True)
class Param:
    """Type and range of one key of a stage's style table.

    ``kind``: ``float`` (ints accepted; NaN and infinities never), ``int``, ``bool``, ``str`` or
    ``tuple`` (three numbers, e.g. a colour); ``lo``/``hi``: closed range of a number (of each
    number of a tuple), ``lo_open`` excludes ``lo`` itself; ``choices``: the accepted strings.
    """

    kind: type
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    choices: tuple[str, ...] = ()

    def problem(self, key: str, value: Any) -> str | None:
        """None if ``value`` fits, else a message naming ``key``, the rule and the value."""
        if isinstance(value, bool):
            got = f"got {str(value).lower()}"  # as TOML spells it
        else:
            plain = isinstance(value, (int, float, str))
            got = f"got {value!r}" + ("" if plain else f" ({type(value).__name__})")
        if self.kind is bool:
            return None if isinstance(value, bool) else f"{key} must be true or false, {got}"
        if self.kind is str:
            if not isinstance(value, str):
                return f"{key} must be a string, {got}"
            if self.choices and value not in self.choices:
                return f"{key} must be one of {', '.join(self.choices)}, {got}"
            return None
        if self.kind is tuple:
            if not isinstance(value, (list, tuple)) or len(value) != 3:
                return f"{key} must be a list of three numbers, {got}"
            return next((p for v in value if (p := self._number(key, v, float, got))), None)
        return self._number(key, value, self.kind, got)

    def _number(self, key: str, value: Any, kind: type, got: str) -> str | None:
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            return f"{key} must be an integer, {got}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{key} must be a number, {got}"
        lo = "(" if self.lo_open else "["
        span = f"{lo}{_fmt(self.lo)}, {_fmt(self.hi)}]" if self.lo is not None and self.hi is not None else ""
        if not math.isfinite(value):
            return f"{key} must be a finite number{' in ' + span if span else ''}, {got}"
        if self.lo is not None and (value < self.lo or (self.lo_open and value == self.lo)):
            return f"{key} must be in {span}, {got}" if span else f"{key} must be >= {_fmt(self.lo)}, {got}"
        if self.hi is not None and value > self.hi:
            return f"{key} must be in {span}, {got}" if span else f"{key} must be <= {_fmt(self.hi)}, {got}"
        return None


def _fmt(x: float | None) -> str:
    return "" if x is None else (str(int(x)) if float(x).is_integer() else str(x))


class OptionError(InputError, ValueError):
    """A stage option of the wrong type or out of range: a usage error (exit 2) for the CLI, a
    ``ValueError`` for Python callers."""


def option(default: Any, kind: type, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
           choices: tuple[str, ...] = ()) -> Any:
    """A ``StageOptions`` field: its default and its rule (a ``Param``). A default of None means
    "not set" and is not checked."""
    return field(default=default, metadata={"param": Param(kind, lo, hi, lo_open, choices)})


@dataclass(frozen=True)
class StageOptions:
    """Base of a stage's typed options: every field is a key of the stage's style table. Building one
    checks every field against its rule (the one place a stage option is checked), then ``validate``
    (rules that tie fields together); both raise ``OptionError`` naming the key and the value."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None or f.default is not None:
                self.check_value(f.name, value)
            if isinstance(value, list):  # TOML arrays: tuples, so the options stay hashable
                object.__setattr__(self, f.name, tuple(value))
        self.validate()

    def validate(self) -> None:
        """Rules between fields; override in a subclass."""

    @classmethod
    def rule(cls, key: str) -> Param | None:
        return next((f.metadata.get("param") for f in fields(cls) if f.name == key), None)

    @classmethod
    def check_value(cls, key: str, value: Any, name: str | None = None) -> None:
        """Raise ``OptionError`` if ``value`` breaks the rule of field ``key`` (``name``: the key to name
        in the message, e.g. the CLI setting ``temporal`` that sets the field ``strength``)."""
        param = cls.rule(key)
        problem = param.problem(name or key, value) if param is not None else None
        if problem:
            raise OptionError(problem)

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def as_kwargs(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class Stage:
    """Base class. Subclasses implement ``process``; temporal ones also the state methods.

    The contract, each part with a default here:

    - capabilities: ``accepts_uint8`` (takes decoded uint8 RGB frames on CPU) and ``accepts_grey``
      (takes and may give (T, 1, H, W) uint8 luma on CPU); False unless a class says so (a class
      whose answer depends on its settings overrides them with a property);
    - ``Options``: the typed options (a ``StageOptions`` dataclass), one field per key a style table
      may give this stage; ``overrides``: the ``ctx.overrides`` keys the class can read;
      ``reads_overrides`` narrows them for one table (a ``lut`` grade reads ``lut``, a ``sepia``
      grade does not);
    - ``warnings``: messages for the run report, a list every stage has (empty by default);
    - ``inspects_input``: the run hands ``inspect_input`` a few decoded RGB frames sampled across
      the input before it starts (``vidcolor.io.sample``), for what a stage that takes luma never
      sees (the Colorize stage warns when the input already has colour); False by default;
    - ``phases()``: the stage split into pipeline steps that each get a thread, or None (run whole);
    - state: ``state_dict`` / ``load_state_dict`` / ``reset`` (none kept by default).
    """

    name: ClassVar[str] = "stage"
    Options: ClassVar[type[StageOptions]] = StageOptions
    overrides: ClassVar[frozenset[str]] = frozenset()
    override_fields: ClassVar[dict[str, str]] = {}  # override key -> the option it sets, when the names differ
    accepts_uint8: ClassVar[bool] = False
    accepts_grey: ClassVar[bool] = False
    inspects_input: ClassVar[bool] = False

    @property
    def warnings(self) -> list[str]:
        """Messages for the run report; created on first use so subclasses need not call ``__init__``."""
        return self.__dict__.setdefault("_stage_warnings", [])

    def inspect_input(self, frames: Any) -> None:
        """Decoded frames sampled across the input, ``(N, H, W, 3)`` uint8 RGB (numpy), when
        ``inspects_input``; called before the first chunk. Default: nothing."""

    prepares_input: ClassVar[bool] = False
    # input frames after its chunk a stage reads (``Chunk.ahead``): restoration compares each frame
    # with the next one; the run decodes that far ahead, so the output is the same however the film
    # is cut into chunks or segments
    lookahead: ClassVar[int] = 0

    def prepare_input(self, path: Any, meta: Any, allow_truncated: bool = False) -> None:
        """When ``prepares_input``: the run calls this with the input's path and ``VideoMeta`` before
        decoding (a pass of its own over the film, e.g. the planning pass of guided colorization), and
        ``release`` when it ends, also on failure. Default: nothing."""

    def release(self) -> None:
        """Remove what ``prepare_input`` made (temporary files). Default: nothing."""

    def phases(self) -> list[Stage] | None:
        """The stage as consecutive pipeline steps (``pipelines.overlap.run_stages`` gives each a
        thread) with the same output as ``process``; None: the stage runs as one step."""
        return None

    @classmethod
    def reads_overrides(cls, table: dict[str, Any]) -> frozenset[str]:
        """The ``ctx.overrides`` keys a stage built from ``table`` (its style table, no ``type``) reads."""
        return cls.overrides

    @classmethod
    def override_use(cls, key: str) -> str:
        """Which stages read override ``key``, for the error when a style has none: "a grade stage"."""
        return f"a {cls.name} stage"

    @classmethod
    def options_from(cls, table: dict[str, Any], ctx: StageContext | None = None) -> StageOptions:
        """The stage's options from its style table (without ``type``) with the ``ctx.overrides`` it
        reads merged over it. Raises ``InputError`` naming the first unknown key or bad value."""
        known = cls.Options.keys()
        for key in table:
            if key not in known:
                raise InputError(f"unknown key {key!r} (known: {', '.join(sorted(known))})")
        values = dict(table)
        if ctx is not None:
            for key in sorted(cls.reads_overrides(table)):
                target, value = cls.override_fields.get(key, key), ctx.overrides.get(key)
                if value is not None and target in known:
                    cls.Options.check_value(target, value, name=key)
                    values[target] = value
        try:
            return cls.Options(**values)
        except TypeError as exc:  # a field without default missing from the table
            missing = [k for k in known if k not in values]
            raise InputError(f"missing key {missing[0]!r}" if missing else str(exc)) from None

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """The (height, width) of the frames this stage gives for input frames of that size: the same
        by default; a stage that resizes (``upscale``) says so here, and :func:`chain_output_size`
        gives the writer the size at the end of a style's chain."""
        return height, width

    def process(self, chunk: Chunk) -> Chunk:
        raise NotImplementedError

    def __call__(self, chunk: Chunk) -> Chunk:
        return self.process(chunk)

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            raise ValueError(f"stage {self.name!r} keeps no state but got keys {sorted(state)}")

    def reset(self) -> None:
        """Forget temporal state (start of a new video or a scene cut)."""

    def describe(self) -> dict[str, Any]:
        """Settings for provenance tags and run reports."""
        return {"stage": self.name}

    @classmethod
    def from_options(cls, options: StageOptions, ctx: StageContext) -> Stage:
        """The stage from its checked options; the device and anything else from the run's ``ctx``."""
        return cls(**options.as_kwargs())


def chain_output_size(stages: list[Stage], height: int, width: int) -> tuple[int, int]:
    """The frame size after ``stages`` (each one's ``output_size``) for input frames of ``height`` x ``width``."""
    for stage in stages:
        height, width = stage.output_size(height, width)
    return height, width


STAGES: dict[str, type[Stage]] = {}


def register_stage(name: str) -> Callable[[type[Stage]], type[Stage]]:
    def deco(cls: type[Stage]) -> type[Stage]:
        if name in STAGES:
            raise ValueError(f"stage {name!r} registered twice")
        cls.name = name
        STAGES[name] = cls
        return cls

    return deco


def build_stage(spec: dict[str, Any], ctx: StageContext) -> Stage:
    """Build a stage from a style's table: ``{"type": "grade", ...params}``. The built-in types are
    registered by importing the ``vidcolor.stages`` package, which is where callers take this from."""
    params = dict(spec)
    kind = params.pop("type", None)
    if kind not in STAGES:
        raise InputError(f"unknown stage type {kind!r} (known: {', '.join(sorted(STAGES))})")
    cls = STAGES[kind]
    try:
        options = cls.options_from(params, ctx)
    except InputError as exc:
        raise InputError(f"stage {kind!r}: {exc}") from None
    try:
        return cls.from_options(options, ctx)
    except (TypeError, ValueError) as exc:  # a value the stage refuses: a usage error (exit 2)
        raise InputError(f"stage {kind!r}: {exc}") from None
