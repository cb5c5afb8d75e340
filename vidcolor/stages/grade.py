"""Colour grades: ``noir`` (monochrome, contrast curve, deep blacks, vignette, fixed-seed grain),
``sepia`` (warm monochrome), ``lut`` (any ``.cube`` 3D LUT, trilinear) and ``none`` (only the
curve / vignette / grain settings).

Functions first (``contrast_curve``, ``vignette_mask``, ``film_grain``, ``apply_lut3d``,
``read_cube``), the ``Grade`` stage second. Grades are per-frame and deterministic: film grain is
seeded by ``seed + frame index``, so a video gives the same grain however it is cut into chunks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.color import rgb_to_luma, to_uint8_cv2
from vidcolor.errors import InputError
from vidcolor.stages.base import (Chunk, OptionError, Stage, StageContext, StageOptions, option,
                                  register_stage)


def contrast_curve(x: torch.Tensor, contrast: float = 0.0, black: float = 0.0, white: float = 1.0,
                   inplace: bool = False) -> torch.Tensor:
    """Levels then an S-curve. ``x`` in [0, 1] (any shape); returns the same shape in [0, 1].

    ``black``/``white`` stretch the input range (values below ``black`` become 0: deep blacks);
    ``contrast`` is the slope parameter of a logistic curve around mid-grey, rescaled so that 0 -> 0
    and 1 -> 1 (``contrast = 0`` is the identity, 4-8 is a strong film look). ``inplace``: write
    into ``x``. The levels and the curve's centring are folded into one affine map before the
    clamp, so the whole curve is five in-place passes (it was nine allocating ones).
    """
    if not 0.0 <= black < white <= 1.0:
        raise ValueError(f"need 0 <= black < white <= 1, got black={black}, white={white}")
    if not (math.isfinite(contrast) and contrast >= 0):
        raise ValueError(f"contrast must be a finite number >= 0, got {contrast}")
    scale = 1.0 / (white - black)
    if contrast <= 1e-6:
        y = x.mul_(scale) if inplace else x.mul(scale)
        return y.add_(-black * scale).clamp_(0, 1)
    # sigmoid(c * (clamp((x - black) * scale, 0, 1) - 0.5)) == sigmoid(clamp(c*scale*x + b, -c/2, c/2))
    c = float(contrast)
    lo = 1 / (1 + math.exp(c / 2))
    hi = 1 / (1 + math.exp(-c / 2))
    y = x.mul_(c * scale) if inplace else x.mul(c * scale)
    y.add_(-c * black * scale - c / 2).clamp_(-c / 2, c / 2).sigmoid_()
    return y.sub_(lo).mul_(1 / (hi - lo))


def vignette_mask(height: int, width: int, amount: float, device: torch.device | None = None) -> torch.Tensor:
    """Multiplicative darkening ``(1, 1, H, W)``: 1 at the centre, ``1 - amount`` in the corners."""
    ys = torch.linspace(-1, 1, height, device=device).view(-1, 1)
    xs = torch.linspace(-1, 1, width, device=device).view(1, -1)
    r2 = (xs**2 + ys**2) / 2  # 0 at the centre, 1 in the corners
    return (1 - amount * r2**1.5).view(1, 1, height, width)


def film_grain(frame_indices: list[int], height: int, width: int, amount: float, seed: int,
               device: torch.device | None = None) -> torch.Tensor:
    """Gaussian grain ``(T, 1, H, W)`` with std ``amount``; frame ``i`` always gets the same noise."""
    out = torch.empty(len(frame_indices), 1, height, width)
    for k, i in enumerate(frame_indices):
        g = torch.Generator().manual_seed(seed * 1_000_003 + i)
        out[k] = torch.randn(1, height, width, generator=g) * amount
    return out.to(device) if device is not None else out


@dataclass(frozen=True)
class Lut3D:
    """A 3D LUT: ``table`` (3, N, N, N) indexed [channel, b, g, r] (red fastest, as in .cube files)."""

    table: torch.Tensor
    domain_min: tuple[float, float, float] = (0.0, 0.0, 0.0)
    domain_max: tuple[float, float, float] = (1.0, 1.0, 1.0)
    title: str = ""


MAX_LUT_SIZE = 256  # 256^3 rows is already a 400 MB text file; real LUTs use 17, 33 or 65


def read_cube(path: str | Path) -> Lut3D:
    """Parse an Adobe/Resolve ``.cube`` 3D LUT file. Every number must be finite, ``LUT_3D_SIZE``
    in [2, 256] with exactly size**3 rows, and ``DOMAIN_MIN`` < ``DOMAIN_MAX`` on each channel;
    anything else is an ``InputError`` naming the file (and line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"{path}: cannot read LUT ({exc.strerror or exc})") from None
    if "\0" in text:
        raise InputError(f"{path}: not a .cube LUT (binary data, not text)")
    size = None
    title = ""
    dmin, dmax = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    values: list[list[float]] = []

    def numbers(fields: list[str], what: str) -> list[float]:
        out = [float(v) for v in fields]
        if len(out) != 3:
            raise ValueError(f"{what}: expected three numbers")
        if not all(math.isfinite(v) for v in out):
            raise ValueError(f"{what}: numbers must be finite")
        return out

    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key = line.split()[0].upper()
        try:
            if key == "TITLE":
                title = line[5:].strip().strip('"')
            elif key == "LUT_3D_SIZE":
                size = int(line.split()[1])
                if not 2 <= size <= MAX_LUT_SIZE:
                    raise ValueError(f"LUT_3D_SIZE must be in [2, {MAX_LUT_SIZE}]")
            elif key == "LUT_1D_SIZE":
                raise InputError(f"{path}: 1D LUTs are not supported; give a 3D .cube LUT")
            elif key == "DOMAIN_MIN":
                dmin = tuple(numbers(line.split()[1:], "DOMAIN_MIN"))  # type: ignore[assignment]
            elif key == "DOMAIN_MAX":
                dmax = tuple(numbers(line.split()[1:], "DOMAIN_MAX"))  # type: ignore[assignment]
            elif key[0].isdigit() or key[0] in "-+.":
                values.append(numbers(line.split(), "row"))
            # other keywords (LUT_3D_INPUT_RANGE, comments from some tools) are ignored
        except (ValueError, IndexError) as exc:
            shown = line if len(line) <= 60 else line[:60] + "..."
            raise InputError(f"{path}:{lineno}: bad .cube line {shown!r} ({exc})") from None
    if size is None:
        raise InputError(f"{path}: not a 3D .cube LUT (no LUT_3D_SIZE line)")
    if len(values) != size**3:
        raise InputError(f"{path}: LUT_3D_SIZE {size} needs {size**3} rows, found {len(values)}")
    if not all(lo < hi for lo, hi in zip(dmin, dmax)):
        raise InputError(f"{path}: DOMAIN_MIN {list(dmin)} must be below DOMAIN_MAX {list(dmax)} on every "
                         "channel")
    table = torch.tensor(values, dtype=torch.float32).view(size, size, size, 3).permute(3, 0, 1, 2).contiguous()
    return Lut3D(table=table, domain_min=dmin, domain_max=dmax, title=title)


def apply_lut3d(rgb: torch.Tensor, lut: Lut3D) -> torch.Tensor:
    """Trilinear lookup. ``rgb`` (T, 3, H, W) in the LUT's domain -> (T, 3, H, W)."""
    t, _, h, w = rgb.shape
    table = lut.table.to(device=rgb.device, dtype=rgb.dtype).unsqueeze(0)  # (1, 3, D=b, H=g, W=r)
    lo = torch.tensor(lut.domain_min, device=rgb.device, dtype=rgb.dtype).view(1, 3, 1, 1)
    hi = torch.tensor(lut.domain_max, device=rgb.device, dtype=rgb.dtype).view(1, 3, 1, 1)
    norm = ((rgb - lo) / (hi - lo)).clamp(0, 1) * 2 - 1
    # grid_sample's last grid dim is (x, y, z) = (W, H, D) = (r, g, b).
    grid = norm.permute(0, 2, 3, 1).reshape(1, 1, t * h, w, 3)
    out = F.grid_sample(table, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out.view(3, t, h, w).permute(1, 0, 2, 3)


SEPIA_TINT = (1.0, 0.86, 0.66)  # multiplied onto luma, renormalised to keep Rec.709 luma
PRESETS = ("noir", "sepia", "lut", "none")


_LUTS: dict[Any, np.ndarray] = {}  # tables by name, curves by ("curve", parameters)


def _luma_lut() -> np.ndarray:
    """(1, 256, 3) float32: Rec.709 luma share of each 8-bit value per channel (sum = luma)."""
    if "luma" not in _LUTS:
        v = np.arange(256, dtype=np.float32) / np.float32(255)
        _LUTS["luma"] = np.stack([v * np.float32(c) for c in (0.2126, 0.7152, 0.0722)], -1).reshape(1, 256, 3)
    return _LUTS["luma"]


def _unit_lut() -> np.ndarray:
    """(1, 256, 3) float32: value / 255 on every channel."""
    if "unit" not in _LUTS:
        v = np.arange(256, dtype=np.float32) / np.float32(255)
        _LUTS["unit"] = np.ascontiguousarray(np.repeat(v.reshape(1, 256, 1), 3, 2))
    return _LUTS["unit"]


def _curve_lut(contrast: float, black: float, white: float) -> np.ndarray:
    """(256,) float32: ``contrast_curve`` of ``v / 255`` for every 8-bit value ``v`` (cached per curve)."""
    key = ("curve", contrast, black, white)
    if key not in _LUTS:
        if len(_LUTS) > 16:
            _LUTS.clear()
        unit = torch.from_numpy(np.arange(256, dtype=np.float32) / np.float32(255))
        _LUTS[key] = np.ascontiguousarray(contrast_curve(unit, contrast, black, white, inplace=True).numpy())
    return _LUTS[key]


@dataclass(frozen=True)
class GradeOptions(StageOptions):
    """The keys of a ``type = "grade"`` table (see :class:`Grade`); the CLI's ``--lut`` sets ``lut``
    of a ``lut`` grade."""

    preset: str = option("none", str, choices=PRESETS)
    contrast: float = option(0.0, float, 0, 20)  # 20: the logistic curve is a hard threshold well before
    black: float = option(0.0, float, 0, 1)
    white: float = option(1.0, float, 0, 1)
    vignette: float = option(0.0, float, 0, 1)
    grain: float = option(0.0, float, 0, 1)
    seed: int = option(0, int, 0, 2**32 - 1)
    lut: str | None = option(None, str)
    tint: tuple[float, float, float] = option(SEPIA_TINT, tuple, 0, 255)
    mix: float = option(1.0, float, 0, 1)

    def validate(self) -> None:
        if not self.black < self.white:
            raise OptionError(f"need 0 <= black < white <= 1, got black={self.black}, white={self.white}")
        if not sum(c * w for c, w in zip(self.tint, (0.2126, 0.7152, 0.0722))) > 0:
            raise OptionError(f"tint must be three finite numbers >= 0, not all 0, got {list(self.tint)}")


@register_stage("grade")
class Grade(Stage):
    """Per-frame colour grade.

    Parameters (style TOML table ``type = "grade"``): ``preset`` (noir | sepia | lut | none),
    ``contrast``, ``black``, ``white`` (see ``contrast_curve``), ``vignette`` (0..1),
    ``grain`` (std of film grain, 0 = off), ``seed``, ``lut`` (path to a .cube file; relative paths
    are taken from the style file's folder), ``tint`` (sepia colour), ``mix`` (0..1 blend with the input).
    Reads ``ctx.overrides["lut"]`` (the CLI's ``--lut``) when the preset is ``lut``.
    """

    Options: ClassVar[type[StageOptions]] = GradeOptions
    overrides: ClassVar[frozenset[str]] = frozenset({"lut"})

    @classmethod
    def reads_overrides(cls, table: dict[str, Any]) -> frozenset[str]:
        return cls.overrides if table.get("preset") == "lut" else frozenset()

    @classmethod
    def override_use(cls, key: str) -> str:
        return 'a grade stage with preset = "lut" (the lut style)'

    def __init__(self, preset: str = "none", contrast: float = 0.0, black: float = 0.0, white: float = 1.0,
                 vignette: float = 0.0, grain: float = 0.0, seed: int = 0, lut: str | Path | None = None,
                 tint: tuple[float, float, float] = SEPIA_TINT, mix: float = 1.0) -> None:
        self.options = GradeOptions(preset=preset, contrast=contrast, black=black, white=white, vignette=vignette,
                                    grain=grain, seed=seed, lut=str(lut) if lut else None, tint=tuple(tint), mix=mix)
        self.preset, self.contrast, self.black, self.white = preset, float(contrast), float(black), float(white)
        self.vignette, self.grain, self.seed, self.mix = float(vignette), float(grain), int(seed), float(mix)
        t = torch.tensor(tint, dtype=torch.float32)
        self.tint = t / (t * torch.tensor([0.2126, 0.7152, 0.0722])).sum()
        self.lut_path = str(lut) if lut else None
        self.lut: Lut3D | None = None
        if preset == "lut":
            if not lut:
                raise InputError("the lut style needs a LUT file: pass --lut FILE.cube")
            self.lut = read_cube(lut)
        self._vignette_cache: dict[tuple, torch.Tensor] = {}

    @classmethod
    def options_from(cls, table: dict[str, Any], ctx: StageContext | None = None) -> StageOptions:
        lut = table.get("lut")
        if isinstance(lut, str) and lut and ctx is not None and ctx.style_dir and not Path(lut).is_absolute():
            table = {**table, "lut": str(Path(ctx.style_dir) / lut)}  # the style file's folder, not the cwd
        return super().options_from(table, ctx)

    @property
    def accepts_uint8(self) -> bool:
        """True when this grade can take the decoded 8-bit frames as they are (``process`` with a
        uint8 chunk on CPU): presets noir, sepia and none without a LUT, grain or mix. The pipeline
        then skips both float conversions (``pipelines/run.py``)."""
        return self.preset in ("noir", "sepia", "none") and self.grain == 0 and self.mix == 1

    @property
    def accepts_grey(self) -> bool:
        """True when this grade needs only the luma and gives only luma: ``noir`` without ``mix``
        (``process`` then takes and returns (T, 1, H, W) uint8 luma on CPU, and the pipeline
        decodes and encodes no RGB at all: ``pipelines/run.py``, ``vidcolor.io.grey``)."""
        return self.preset == "noir" and self.mix == 1

    def process(self, chunk: Chunk) -> Chunk:
        x = chunk.frames
        if x.dtype == torch.uint8 and x.shape[1] == 1:
            return chunk.with_frames(self._process_grey(x, chunk.index))
        if x.dtype == torch.uint8:
            return chunk.with_frames(self._process_uint8(x))
        t, _, h, w = x.shape
        if self.preset == "lut":
            assert self.lut is not None
            y = apply_lut3d(x, self.lut)
        elif self.preset in ("noir", "sepia"):
            y = rgb_to_luma(x)
        else:
            y = x
        y = contrast_curve(y, self.contrast, self.black, self.white, inplace=y is not x)  # y is ours
        if self.vignette > 0:
            key = (h, w, x.device)
            if key not in self._vignette_cache:
                self._vignette_cache = {key: vignette_mask(h, w, self.vignette, x.device)}
            y.mul_(self._vignette_cache[key])
        if self.grain > 0:
            idx = list(range(chunk.index, chunk.index + t))
            y.add_(film_grain(idx, h, w, self.grain, self.seed, x.device))
        if self.preset == "noir":
            y = y.clamp_(0, 1).expand(t, 3, h, w)  # clamp one channel, not three
        elif self.preset == "sepia":
            y = (y * self.tint.to(x.device).view(1, 3, 1, 1)).clamp_(0, 1)
        else:
            y = y.clamp_(0, 1)
        if self.mix < 1:
            y = self.mix * y + (1 - self.mix) * x
        return chunk.with_frames(y.contiguous())

    def _process_uint8(self, x: torch.Tensor) -> torch.Tensor:
        """(T, 3, H, W) uint8 CPU frames -> uint8 frames of the same layout (channels-last memory):
        the float path's result to within one code value (rounding), with OpenCV doing the
        conversions: per-channel tables give luma (or RGB) as float32 directly from the 8-bit
        values, the curve and vignette run in place, and the result is rounded and saturated
        into 8 bits (``cv2.convertScaleAbs`` / ``cv2.multiply``). About 3x less CPU than
        converting to float, grading and converting back (bin/bench, noir at 854x480)."""
        import cv2

        if not self.accepts_uint8 or x.device.type != "cpu":
            raise ValueError(f"grade {self.preset!r} with these settings needs float frames")
        t, _, h, w = x.shape
        nhwc = x.permute(0, 2, 3, 1)
        src = nhwc.numpy() if nhwc.is_contiguous() else nhwc.contiguous().numpy()
        out = np.empty((t, h, w, 3), np.uint8)
        grey_out = self.preset in ("noir", "sepia")
        lut = _luma_lut() if grey_out else _unit_lut()
        key = (h, w, "u8")
        if self.vignette > 0 and key not in self._vignette_cache:
            mask = vignette_mask(h, w, self.vignette)[0].permute(1, 2, 0).contiguous().numpy()
            self._vignette_cache = {key: mask if grey_out else np.ascontiguousarray(np.repeat(mask, 3, 2))}
        tint = [float(v) * 255.0 for v in self.tint]
        tinted = [np.empty((h, w), np.uint8) for _ in tint] if self.preset == "sepia" else []
        ones = np.ones((1, 3), np.float32)
        for i in range(t):
            y = cv2.LUT(src[i], lut)  # (H, W, 3) float32: weighted luma shares, or values / 255
            if grey_out:
                y = cv2.transform(y, ones)  # (H, W) Rec.709 luma
            yt = contrast_curve(torch.from_numpy(y), self.contrast, self.black, self.white, inplace=True)
            y = yt.numpy()
            if self.vignette > 0:
                m = self._vignette_cache[key]
                cv2.multiply(y, m[..., 0] if grey_out else m, dst=y)
            if self.preset == "noir":
                g = to_uint8_cv2(y)
                cv2.merge([g, g, g], dst=out[i])
            elif self.preset == "sepia":
                # per channel y * tint, rounded (y >= 0): OpenCV's multiply by a scalar tuple into
                # uint8 is the slow path on both OpenCV 4 and 5
                for k in range(3):
                    cv2.convertScaleAbs(y, dst=tinted[k], alpha=tint[k])
                cv2.merge(tinted, dst=out[i])
            else:
                to_uint8_cv2(y, out[i])
        return torch.from_numpy(out).permute(0, 3, 1, 2)

    def _process_grey(self, x: torch.Tensor, index: int) -> torch.Tensor:
        """(T, 1, H, W) uint8 full-range luma on CPU -> the same layout, graded: the float path's
        curve, vignette and grain on each frame's luma (a table gives it as float32 in one pass),
        rounded and saturated into 8 bits."""
        import cv2

        if not self.accepts_grey or x.device.type != "cpu":
            raise ValueError(f"grade {self.preset!r} with these settings needs RGB frames")
        t, _, h, w = x.shape
        src = x.reshape(t, h, w).contiguous().numpy()
        out = np.empty((t, h, w), np.uint8)
        # the curve of every 8-bit value: one table lookup gives the curved luma as float32
        # (the same function on the same 256 inputs as the float path, computed once per curve)
        curve = _curve_lut(self.contrast, self.black, self.white)
        key = (h, w, "grey")
        if self.vignette > 0 and key not in self._vignette_cache:
            self._vignette_cache = {key: vignette_mask(h, w, self.vignette)[0, 0].contiguous().numpy()}
        grain = film_grain(list(range(index, index + t)), h, w, self.grain, self.seed) if self.grain > 0 else None
        for i in range(t):
            y = cv2.LUT(src[i], curve)  # (H, W) float32 in [0, 1], curved
            if grain is None:  # y >= 0: round and saturate in the last pass (no negatives to clip)
                if self.vignette > 0:
                    cv2.multiply(y, self._vignette_cache[key], dst=out[i], scale=255.0, dtype=cv2.CV_8U)
                else:
                    cv2.convertScaleAbs(y, dst=out[i], alpha=255.0)
                continue
            if self.vignette > 0:
                cv2.multiply(y, self._vignette_cache[key], dst=y)
            cv2.add(y, grain[i, 0].numpy(), dst=y)
            to_uint8_cv2(y, out[i])
        return torch.from_numpy(out).view(t, 1, h, w)

    def describe(self) -> dict[str, Any]:
        d = {"stage": self.name, "preset": self.preset, "contrast": self.contrast, "black": self.black,
             "white": self.white, "vignette": self.vignette, "grain": self.grain, "seed": self.seed, "mix": self.mix}
        if self.lut_path:
            d["lut"] = Path(self.lut_path).name
        return d
