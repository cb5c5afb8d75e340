"""Training recipes: TOML files mapped onto frozen dataclasses, with dotted ``--set`` overrides.

A recipe has one table per concern, and each part of the trainer receives only its own table
(the counter-example is pytorch-CycleGAN-and-pix2pix's single global ``opt``)::

    [model]            # the generator: a vidcolor.models.MODELS name + its keyword arguments
    arch = "unet"
    kwargs = { num_downs = 5, ngf = 8 }
    [discriminator]    # PatchGAN (Isola et al. 2017, §3.2.2)
    ndf = 8
    n_layers = 2
    [objective]        # pix2pix | cyclegan, plus the temporal term
    kind = "pix2pix"
    task = "colorize"
    lambda_temporal = 0.0
    [data]
    crop = 64
    clip_len = 1
    [train]
    steps = 200
    [export]
    render_size = 256

``load_recipe(path, overrides={"train.steps": "50"})`` reads, overrides, validates and returns a
:class:`Recipe`; every mistake (unknown key, wrong type, bad value) is one :class:`InputError`
line naming the file and the dotted key.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, get_type_hints

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from vidcolor.errors import InputError

GAN_MODES = ("vanilla", "lsgan")
KINDS = ("pix2pix", "cyclegan", "style", "critic")
TASKS = ("colorize", "stylize", "superres", "restoration")
FLOWS = ("dis", "raft_small", "raft_large")


@dataclass(frozen=True)
class ModelConfig:
    """The generator: ``build_model(arch, **kwargs)``. Channel counts are filled in from the task
    (colorize: 1 -> 2, stylize: 3 -> 3) unless given."""

    arch: str = "unet"
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    init_gain: float = 0.02  # N(0, 0.02) init, as pix2pix/CycleGAN ``init_weights(init_type="normal")``
    init_from: str = ""      # a weights name or folder to fine-tune from (issue 8: retraining the shipped model)


@dataclass(frozen=True)
class DiscriminatorConfig:
    """PatchGAN discriminator (``NLayerDiscriminator``); ``n_layers=3`` is the 70x70 PatchGAN."""

    ndf: int = 64
    n_layers: int = 3
    norm: str = "batch"


@dataclass(frozen=True)
class ObjectiveConfig:
    """Loss terms and their weights; defaults follow the papers.

    pix2pix (Isola et al. 2017, §3.1, eq. 4): ``lambda_gan * GAN + lambda_l1 * L1``, λ_L1 = 100.
    CycleGAN (Zhu et al. 2017, §3.3 and §7.1): LSGAN, λ_cyc = 10, identity weight
    ``lambda_identity * lambda_cycle`` (0.5, as upstream's ``--lambda_identity``), image pool of 50.
    Temporal: ``lambda_temporal`` * ‖M ⊙ (G(x_t) − warp(G(x_{t−1}), F_{t→t−1}))‖₁ (0 = off), flow
    from ``flow`` on the *input* frames. ``rebalance``: Zhang et al. 2016 §2.2 class rebalancing of
    the ab regression (mixing weight λ of eq. 4, 0 = off, 0.5 in the paper); colorize only.
    ``lambda_ciede``: weight of the mean per-pixel CIEDE2000 between the output and the truth (the
    eval metric, ``losses.ciede2000_loss``; 0 = off); colorize only.
    ``lambda_class``: weight of Zhang et al.'s cross-entropy over quantized ab (soft-encoded targets,
    rebalanced when ``rebalance`` > 0) for generators that predict ab-bin logits (``effunet``); 0 = off.
    Then ``lambda_l1`` and ``lambda_ciede`` act on the decoded (annealed-mean) ab, usually 0.

    ``kind = "style"``: one painting -> a feed-forward style network; its keys (``style_image`` ...
    ``lambda_color``) are described in ``training/style.py``. ``kind = "critic"``: ``training/critic.py``.
    """

    kind: str = "pix2pix"
    task: str = "colorize"
    gan_mode: str = "vanilla"
    lambda_gan: float = 1.0
    lambda_l1: float = 100.0
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5
    pool_size: int = 50
    lambda_temporal: float = 0.0
    flow: str = "dis"
    rebalance: float = 0.0
    lambda_ciede: float = 0.0
    lambda_class: float = 0.0
    style_image: str = ""
    style_size: int = 256
    lambda_content: float = 1.0
    lambda_style: float = 1.0
    lambda_tv: float = 0.0
    lambda_feature_temporal: float = 0.0
    from_grey: bool = False
    lambda_color: float = 0.0


@dataclass(frozen=True)
class DataConfig:
    """Where samples come from and how they are cut.

    ``paths`` (domain A / colour footage) and ``paths_b`` (domain B, or the targets of aligned
    pairs) are folders or files; ``--data``/``--data-b`` on the CLI replace them. Each sample is a
    clip of ``clip_len`` frames ``clip_stride`` apart from a random start (a still image is a
    static clip), resized so its short side is ``load_size`` and randomly cropped to ``crop``
    (identical crop and flip for all frames of a clip). ``exclude``: paths or globs (relative to
    a data folder or absolute) never used. ``exclude_splits``/``exclude_splits_b``: splits of a
    ``MANIFEST.md`` found above the data folder that are never used (the eval split always is).
    ``skip_grey``: colorize only; drop sources with (almost) no chroma, they teach grey.
    ``cache``: decode every source once at ``load_size`` into ``.npy`` files (``cache_dir``, default
    ``RUN_DIR/cache``) read memory-mapped: random access into H.264 costs a seek and a GOP decode
    per sample (a large part of a second for a 720p clip), a cached clip about a millisecond. ``max_frames``: per
    video, only the middle ``max_frames`` frames are used (0 = all). ``video_share``: the fraction
    of samples drawn from the videos when there are both videos and images (0 = every source
    equally likely, so 20 clips among 700 photos give ~3 % video samples).
    ``degrade``: restoration only; the :class:`vidcolor.degrade.Degradation` applied on the fly to
    make the input of each clean clip (keys flicker, grain, specks, scratches, blur, jpeg; missing
    keys take its defaults: flicker 0.1, grain 8/255, 20 specks and 2 scratches a frame).
    """

    paths: tuple[str, ...] = ()
    paths_b: tuple[str, ...] = ()
    aligned: bool = False
    crop: int = 64
    load_size: int = 72
    clip_len: int = 1
    clip_stride: int = 1
    flip: bool = True
    exclude: tuple[str, ...] = ()
    exclude_splits: tuple[str, ...] = ("eval",)
    exclude_splits_b: tuple[str, ...] = ("eval",)
    skip_grey: bool = True
    cache: bool = True
    cache_dir: str = ""
    max_frames: int = 0
    video_share: float = 0.0
    num_workers: int = 0
    degrade: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping. Adam(lr, (beta1, beta2)) as both papers; the learning rate is
    constant until ``decay_start`` and then decays linearly to 0 at ``steps`` (upstream's
    ``--lr_policy linear`` with n_epochs / n_epochs_decay, counted in steps here)."""

    steps: int = 200
    batch_size: int = 4
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    decay_start: int = -1  # -1: half of steps; >= steps: constant learning rate
    seed: int = 0
    checkpoint_every: int = 100
    keep_checkpoints: int = 3
    log_every: int = 1
    sample_every: int = 100
    device: str = "cpu"
    threads: int = 0  # torch intra-op threads per process, 0 = torch's default
    amp: bool = True  # autocast fp16 on CUDA only; CPU always trains in fp32 (deterministic)


@dataclass(frozen=True)
class ExportConfig:
    """What the exported style looks like: working size and the stabilizer strength (0 = none)."""

    render_size: int = 256
    stabilize: float = 0.6


@dataclass(frozen=True)
class Recipe:
    name: str = "recipe"
    description: str = ""
    model: ModelConfig = ModelConfig()
    discriminator: DiscriminatorConfig = DiscriminatorConfig()
    objective: ObjectiveConfig = ObjectiveConfig()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    export: ExportConfig = ExportConfig()

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def replace(self, **sections: dict[str, Any]) -> "Recipe":
        """A copy with some fields changed: ``recipe.replace(train={"steps": 10})``."""
        changes = {k: dataclasses.replace(getattr(self, k), **v) for k, v in sections.items()}
        return dataclasses.replace(self, **changes)


SECTIONS = {f.name: f.type for f in dataclasses.fields(Recipe) if f.name not in ("name", "description")}


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check/convert one TOML value to the dataclass field type (str annotations from __future__)."""
    import collections.abc
    import typing

    origin = typing.get_origin(annotation)
    text = str(annotation)
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise InputError(f"{where}: expected a list of strings, got {value!r}")
        return tuple(value)
    if origin is collections.abc.Mapping:
        if not isinstance(value, dict):
            raise InputError(f"{where}: expected a table, got {value!r}")
        return dict(value)
    if annotation is bool or text == "bool":
        if not isinstance(value, bool):
            raise InputError(f"{where}: expected true or false, got {value!r}")
        return value
    if annotation is int or text == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is float or text == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise InputError(f"{where}: expected a string, got {value!r}")
    return value


def parse_value(text: str) -> Any:
    """``--set`` values are TOML (``10``, ``2e-4``, ``true``, ``["a", "b"]``, ``{ngf = 8}``); anything
    that is not valid TOML is taken as a plain string (``--set objective.kind=cyclegan``)."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(data: dict[str, Any], overrides: Mapping[str, str], where: str = "--set") -> dict[str, Any]:
    """Set dotted keys (``train.steps``, ``model.kwargs.ngf``) in a nested dict; values parsed by
    :func:`parse_value`. Unknown sections are left for :func:`recipe_from_dict` to report."""
    data = json.loads(json.dumps(data))
    for key, raw in overrides.items():
        parts = key.split(".")
        if len(parts) < 2 and key not in ("name", "description"):
            raise InputError(f"{where}: {key!r} must be a dotted key like train.steps")
        node = data
        for p in parts[:-1]:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                raise InputError(f"{where}: {key!r}: {p!r} is not a table")
            node = child
        node[parts[-1]] = parse_value(raw) if isinstance(raw, str) else raw
    return data


def recipe_from_dict(data: Mapping[str, Any], where: str = "recipe") -> Recipe:
    """Build and validate a :class:`Recipe` from nested dicts (TOML tables)."""
    unknown = sorted(set(data) - set(SECTIONS) - {"name", "description"})
    if unknown:
        raise InputError(f"{where}: unknown section {unknown[0]!r} (known: {', '.join(SECTIONS)})")
    parts: dict[str, Any] = {"name": str(data.get("name", "recipe")), "description": str(data.get("description", ""))}
    for section, cls_name in SECTIONS.items():
        cls = globals()[cls_name] if isinstance(cls_name, str) else cls_name
        table = data.get(section, {})
        if not isinstance(table, dict):
            raise InputError(f"{where}: [{section}] must be a table, got {table!r}")
        hints = get_type_hints(cls)
        bad = sorted(set(table) - set(hints))
        if bad:
            raise InputError(f"{where}: unknown key {section}.{bad[0]} (known: {', '.join(hints)})")
        parts[section] = cls(**{k: _coerce(v, hints[k], f"{where}: {section}.{k}") for k, v in table.items()})
    recipe = Recipe(**parts)
    validate(recipe, where)
    return recipe


def validate(r: Recipe, where: str) -> None:
    """Value checks the types cannot express; one InputError line each."""
    def need(ok: bool, key: str, message: str) -> None:
        if not ok:
            raise InputError(f"{where}: {key} {message}")

    o, d, t = r.objective, r.data, r.train
    need(o.kind in KINDS, "objective.kind", f"must be one of {KINDS}, got {o.kind!r}")
    need(o.task in TASKS, "objective.task", f"must be one of {TASKS}, got {o.task!r}")
    need(o.gan_mode in GAN_MODES, "objective.gan_mode", f"must be one of {GAN_MODES}, got {o.gan_mode!r}")
    need(o.flow in FLOWS, "objective.flow", f"must be one of {FLOWS}, got {o.flow!r}")
    need(not (o.kind == "cyclegan" and o.task == "colorize"), "objective.task",
         "must be 'stylize' for cyclegan (RGB -> RGB domains); colorize is a paired (pix2pix) task")
    need(o.kind != "critic" or o.task == "colorize", "objective.task", "must be 'colorize' for a critic")
    if o.task == "superres":  # pairs made from one folder: the crop downscaled -> the crop, L1 alone
        need(o.kind == "pix2pix" and r.model.arch == "superres", "objective.task",
             "'superres' needs objective.kind = 'pix2pix' and model.arch = 'superres'")
        need(o.lambda_gan == 0, "objective.lambda_gan", f"must be 0 for superres (L1 alone), got {o.lambda_gan}")
        scale = r.model.kwargs.get("scale", 2)
        need(d.crop % scale == 0 if isinstance(scale, int) else True, "data.crop",
             f"must be a multiple of model.kwargs.scale ({scale}), got {d.crop}")
    if o.task == "restoration":  # clean clips degraded on the fly -> their middle frame, L1 alone
        need(o.kind == "pix2pix" and r.model.arch == "restorenet", "objective.task",
             "'restoration' needs objective.kind = 'pix2pix' and model.arch = 'restorenet'")
        for key in ("lambda_gan", "lambda_temporal"):
            need(getattr(o, key) == 0, f"objective.{key}", f"must be 0 for restoration (L1 alone), got {getattr(o, key)}")
        frames = r.model.kwargs.get("frames", 3)
        need(d.clip_len % 2 == 1 and d.clip_len == frames, "data.clip_len",
             f"must be odd and equal model.kwargs.frames ({frames}) for restoration, got {d.clip_len}")
        try:
            degradation(d)
        except (TypeError, ValueError) as exc:
            need(False, "data.degrade", f"is not a valid degradation: {exc}")
    else:
        need(not d.degrade, "data.degrade", f"is for objective.task = 'restoration', not {o.task!r}")
    need(0.0 <= o.rebalance <= 1.0, "objective.rebalance", f"must be in [0, 1], got {o.rebalance}")
    for key in ("lambda_gan", "lambda_l1", "lambda_cycle", "lambda_identity", "lambda_temporal", "lambda_ciede",
                "lambda_class", "lambda_content", "lambda_style", "lambda_tv", "lambda_feature_temporal", "lambda_color"):
        need(getattr(o, key) >= 0, f"objective.{key}", f"must be >= 0, got {getattr(o, key)}")
    need(o.lambda_ciede == 0 or (o.kind == "pix2pix" and o.task == "colorize"), "objective.lambda_ciede",
         "is a colour-difference loss on a*b*: only for pix2pix colorize")
    need(o.lambda_class == 0 or (o.kind == "pix2pix" and o.task == "colorize" and r.model.arch == "effunet"),
         "objective.lambda_class", "is the ab-bin cross-entropy: only for pix2pix colorize with model.arch = 'effunet'")
    if o.kind == "style":
        need(o.task == "stylize", "objective.task", f"must be 'stylize' for kind 'style', got {o.task!r}")
        need(bool(o.style_image), "objective.style_image", "is required for kind 'style' (the painting: --style-image)")
        need(o.style_size >= 32, "objective.style_size", f"must be >= 32, got {o.style_size}")
        need(o.lambda_feature_temporal == 0 or d.clip_len >= 2, "objective.lambda_feature_temporal", "needs clip_len >= 2")
    else:
        for key in ("from_grey", "style_image", "lambda_color", "lambda_feature_temporal", "lambda_tv"):
            need(not getattr(o, key), f"objective.{key}", f"is for objective.kind = 'style', not {o.kind!r}")
    need(o.pool_size >= 0, "objective.pool_size", f"must be >= 0, got {o.pool_size}")
    need(d.crop >= 8, "data.crop", f"must be >= 8, got {d.crop}")
    need(d.load_size >= d.crop, "data.load_size", f"must be >= data.crop ({d.crop}), got {d.load_size}")
    need(d.clip_len >= 1, "data.clip_len", f"must be >= 1, got {d.clip_len}")
    need(d.clip_stride >= 1, "data.clip_stride", f"must be >= 1, got {d.clip_stride}")
    need(o.lambda_temporal == 0 or d.clip_len >= 2, "objective.lambda_temporal",
         f"needs clips: set data.clip_len >= 2 (got {d.clip_len})")
    need(d.max_frames >= 0, "data.max_frames", f"must be >= 0, got {d.max_frames}")
    need(d.max_frames == 0 or d.max_frames >= (d.clip_len - 1) * d.clip_stride + 1, "data.max_frames",
         f"must hold one clip ({(d.clip_len - 1) * d.clip_stride + 1} frames), got {d.max_frames}")
    need(0.0 <= d.video_share <= 1.0, "data.video_share", f"must be in [0, 1], got {d.video_share}")
    need(d.num_workers >= 0, "data.num_workers", f"must be >= 0, got {d.num_workers}")
    need(t.steps >= 1, "train.steps", f"must be >= 1, got {t.steps}")
    need(t.batch_size >= 1, "train.batch_size", f"must be >= 1, got {t.batch_size}")
    need(t.lr > 0, "train.lr", f"must be > 0, got {t.lr}")
    for key in ("checkpoint_every", "log_every", "sample_every", "keep_checkpoints"):
        need(getattr(t, key) >= 1, f"train.{key}", f"must be >= 1, got {getattr(t, key)}")
    need(r.export.render_size >= 8, "export.render_size", f"must be >= 8, got {r.export.render_size}")
    need(0.0 <= r.export.stabilize <= 1.0, "export.stabilize", f"must be in [0, 1], got {r.export.stabilize}")
    from vidcolor.models.registry import MODELS
    need(r.model.arch in MODELS, "model.arch", f"must be one of {sorted(MODELS)}, got {r.model.arch!r}")


def degradation(d: DataConfig):
    """``data.degrade`` as a :class:`vidcolor.degrade.Degradation` (TypeError or ValueError if bad)."""
    from vidcolor.degrade import Degradation

    keys = [f.name for f in dataclasses.fields(Degradation)]
    for key, value in d.degrade.items():
        if key not in keys:
            raise ValueError(f"unknown key {key!r} (known: {', '.join(keys)})")
        kind = int if key in ("specks", "scratches", "jpeg") else (int, float)
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ValueError(f"{key} must be {'an integer' if kind is int else 'a number'}, got {value!r}")
    return Degradation(**d.degrade)


def load_recipe(path: str | Path, overrides: Mapping[str, str] | None = None) -> Recipe:
    """Read a recipe TOML, apply dotted ``overrides`` (``{"train.steps": "50"}``), validate."""
    from vidcolor.styles import read_toml

    path = Path(path)
    data = read_toml(path, "recipe")
    data.setdefault("name", path.stem)
    if overrides:
        data = apply_overrides(data, overrides)
    return recipe_from_dict(data, str(path))


def find_recipe(name_or_path: str) -> Path:
    """A recipe path, or the name of a built-in one (``colorize_tiny`` -> configs/train/colorize_tiny.toml)."""
    path = Path(name_or_path)
    if path.exists() or path.suffix == ".toml" and "/" in name_or_path:
        return path
    from importlib import resources

    builtin = Path(str(resources.files("vidcolor.configs").joinpath("train"))) / f"{path.stem}.toml"
    return builtin if builtin.is_file() else path
