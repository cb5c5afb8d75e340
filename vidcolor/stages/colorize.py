"""Colorize: predict chroma from luminance with a GAN generator, keep the original luminance.

Per chunk, in CIE Lab (ARCHITECTURE.md, "Colour handling"):

1. L of every frame at full resolution, ``(T, 1, H, W)`` in [0, 100] (any colour in the input
   is ignored: only L is used; on CPU from the frame rounded to 8 bits, see
   :func:`vidcolor.color.lightness_8bit`).
2. L resized so the short side is ``render_size`` (aspect kept), normalised with the weights'
   ``l_norm``, padded to the network's multiple, run in batches, cropped: ab at working size.
3. ab brought to full resolution: bilinear, or guided by full-resolution L (fast guided filter,
   He & Sun 2015, arXiv:1505.00996) which puts chroma edges on luminance edges instead of
   smearing them over ``H / render_size`` pixels (tests measure the gain on real photos).
4. Merged with the *untouched* full-resolution L. Where L + ab falls outside sRGB, the colour is
   moved towards the grey of the same luminance (:func:`vidcolor.color.lab_to_rgb_keep_lightness`,
   one pass), so clipping never changes luminance: output L equals input L within rounding, and
   there is no luminance flicker.

With ``temporal > 0`` the predicted chroma is stabilized *at the working size*, between steps 2 and
3 (the :class:`~vidcolor.stages.stabilize.Stabilize` core: flow on the working-size L, Lai et al.
2018 occlusion and photometric tests, scene cuts): chroma is low-resolution by construction, so this
equals stabilizing full-size frames in Lab without the full-size work (docs/architecture.md).
Keyframes and hints replace the chroma where they reach, after the stabilizer (``vidcolor.guides``).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from vidcolor.color import lab_to_rgb_keep_lightness, lightness_8bit, rgb_to_lightness
from vidcolor.errors import WeightsError
from vidcolor.models.pretrained import load_pretrained
from vidcolor.ops import agreement_average, guided_upsample
from vidcolor.models.runtime import (PRECISIONS, batches, pick_device, prepare_model, resize,
                                     resolve_precision, run_padded, working_size)
from vidcolor.stages.base import Chunk, Stage, StageContext, StageOptions, option, register_stage
from vidcolor.stages.keep_color import ShotColour, colour_warning
from vidcolor.stages.stabilize import Stabilize


@dataclass(frozen=True)
class ColorizeOptions(StageOptions):
    """The keys of a ``type = "colorize"`` table (see :class:`Colorize`); the CLI's ``--weights``,
    ``--render-size``, ``--precision``, ``--compile``, ``--keep-color``, ``--temporal`` and ``--flow``
    set the keys of the same names (the last two when the table sets ``temporal``)."""

    weights: str = option("colorize", str)
    render_size: int = option(256, int, 8, 4096)
    guided: bool = option(True, bool)
    batch_size: int = option(4, int, 1, 256)
    precision: str = option("auto", str, choices=PRECISIONS)
    compile: bool = option(False, bool)
    temporal: float = option(0.0, float, 0, 1)
    flow: str = option("auto", str)
    scene_cut: float = option(0.35, float, 0, 1, lo_open=True)
    photo_tol: float = option(0.05, float, 0, 1, lo_open=True)
    flip_tta: bool = option(False, bool)
    tta_sigma: float = option(0.2, float, 0, 10)
    keep_color: bool = option(False, bool)
    keyframes: str = option("", str)
    hints: str = option("", str)


@register_stage("colorize")
class Colorize(Stage):
    """Grey (or colour) frames -> colour frames; L untouched, ab from the model.

    ``weights``: a weights name or folder (``vidcolor models list``); must be a colorizer.
    ``render_size``: short side the model sees (256: the training size of our and Zhang's nets).
    ``guided``: guided-filter upsampling of ab (else bilinear). ``batch_size``: frames per forward.
    ``precision``: ``auto`` (fp16 autocast on CUDA, bf16 on CPUs with native bf16, else fp32),
    ``fp32``, ``fp16``, ``bf16``. ``compile``: ``torch.compile`` the model (CLI ``--compile``).
    ``flip_tta``: also run the mirrored frame and combine both predictions with
    :func:`agreement_average` (``tta_sigma``, in the network's output units; 0 = plain mean); twice
    the model work, fewer false-colour blotches (docs/models/colorize-fast.md).
    ``temporal``: strength in [0, 1] of the chroma stabilizer at working size (0: off); ``flow``:
    its flow estimator (``auto``, ``dis``, ``raft_small``, ``raft_large``); ``scene_cut`` and
    ``photo_tol`` as in :class:`~vidcolor.stages.stabilize.Stabilize`.
    ``keep_color``: frames of shots whose input has colour come out as they came in, the others are
    colorized (decided per shot: :class:`~vidcolor.stages.keep_color.ShotColour`); the stage then
    takes RGB frames, not luma. Without it, an input with colour gets a warning (``inspect_input``).
    ``keyframes`` (a folder or TOML map of colour images) and ``hints`` (a JSON file): colour carried
    through each shot (:class:`vidcolor.guides.runner.GuidedChroma`; a planning pass first, see
    ``prepare_input``); the automatic colour where no guide reaches.
    Reads ``ctx.overrides`` keys ``weights``, ``render_size``, ``precision``, ``compile``, ``keep_color``, and
    ``temporal`` and ``flow`` when the style's table sets ``temporal`` (then this stage is the
    style's stabilizer); device from ``ctx.device``.
    """

    Options: ClassVar[type[StageOptions]] = ColorizeOptions
    overrides: ClassVar[frozenset[str]] = frozenset({"weights", "render_size", "precision", "compile",
                                                     "keep_color", "temporal", "flow", "keyframes", "hints"})

    @classmethod
    def reads_overrides(cls, table: dict[str, Any]) -> frozenset[str]:
        # --temporal and --flow only when this stage is the style's stabilizer (its table sets temporal)
        return cls.overrides if "temporal" in table else cls.overrides - {"temporal", "flow"}

    @classmethod
    def override_use(cls, key: str) -> str:
        return "a colorize stage that sets temporal" if key in ("temporal", "flow") else "a colorize stage"

    def __init__(self, weights: str = "colorize", render_size: int = 256, guided: bool = True, batch_size: int = 4,
                 precision: str = "auto", device: str | torch.device | None = "cpu",
                 compile: bool = False, temporal: float = 0.0, flow: str = "auto", scene_cut: float = 0.35,
                 photo_tol: float = 0.05, flip_tta: bool = False, tta_sigma: float = 0.2, keep_color: bool = False,
                 keyframes: str = "", hints: str = ""):
        self.options = ColorizeOptions(weights=str(weights), render_size=render_size, guided=guided,
                                       batch_size=batch_size, precision=precision, compile=compile,
                                       temporal=temporal, flow=flow, scene_cut=scene_cut, photo_tol=photo_tol,
                                       flip_tta=flip_tta, tta_sigma=tta_sigma, keep_color=keep_color,
                                       keyframes=str(keyframes), hints=str(hints))
        self.compile = bool(compile)
        self.device = pick_device(device)
        self.dtype = resolve_precision(precision, self.device)
        self.weights, self.render_size, self.guided = str(weights), render_size, bool(guided)
        self.batch_size, self.precision = int(batch_size), precision
        model, config = load_pretrained(self.weights, device="cpu")
        if config["task"] != "colorize":
            raise WeightsError(f"weights {self.weights!r} are a {config['task']} model, the colorize stage needs "
                               "colorize weights")
        self.config = config
        self.l_center, self.l_scale = (float(v) for v in config["l_norm"])
        self.ab_scale = float(config["ab_scale"])
        self.multiple = int(getattr(model, "size_multiple", 1))
        self.model = prepare_model(model, self.device, compile=self.compile, dtype=self.dtype)
        self._pool = None  # helper thread for the full-size per-frame work on CPU (see process)
        self._pending: collections.deque = collections.deque()  # see phases
        self.flip_tta, self.tta_sigma = bool(flip_tta), float(tta_sigma)
        self.temporal = float(temporal)
        self.stabilizer: Stabilize | None = None
        if self.temporal > 0:  # threads=0: runs inside this stage's thread setting
            self.stabilizer = Stabilize(strength=self.temporal, flow=flow, mode="ab", scene_cut=scene_cut,
                                        photo_tol=photo_tol, device=self.device, threads=0)
        self.keep = ShotColour(flow, scene_cut, photo_tol, self.device) if keep_color else None
        self.guide = None
        if keyframes or hints:  # (imported here: vidcolor.guides imports the stages package)
            from vidcolor.guides.runner import GuidedChroma

            self.guide = GuidedChroma.for_stage(self, keyframes, hints, flow, scene_cut)

    @classmethod
    def from_options(cls, options: StageOptions, ctx: StageContext) -> Colorize:
        return cls(**options.as_kwargs(), device=ctx.device)

    @torch.inference_mode()
    def colorize_L(self, L: torch.Tensor, index: int | None = None) -> torch.Tensor:
        """``(N, 1, H, W)`` L in [0, 100] on the stage device -> ab ``(N, 2, H, W)`` (may leave the gamut
        at this L; :func:`lab_to_rgb_keep_lightness` brings it back without touching L). With
        ``index`` (number of the first frame in the video) and ``temporal > 0`` the chroma is
        stabilized against the frames before; calls must then come in frame order."""
        ab_small, L_small = self._predict(L, index)
        return self._upsample(ab_small, L_small, L)

    def _predict(self, L: torch.Tensor, index: int | None, defer: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Full-size L -> (ab at working size, float32, stabilized when ``temporal``; L at working size)."""
        small_size = working_size(L.shape[-2], L.shape[-1], self.render_size)
        L_small = resize(L, small_size)
        x = (L_small - self.l_center) / self.l_scale
        feats = None  # the model's features, for guides (vidcolor.guides.runner)
        if self.flip_tta:  # the frame and its mirror image in one batch
            both = run_padded(self.model, torch.cat([x, x.flip(-1)]), self.multiple, self.dtype)
            self._check_channels(both)
            out = agreement_average(both[:len(x)], both[len(x):].flip(-1), self.tta_sigma)
        elif self.guide is not None and self.guide.feature_fn and index is not None and self.guide.guided(index, len(x)):
            out, feats = self.guide.model_outputs(self.model, x, self.multiple, self.dtype)
        else:
            out = run_padded(self.model, x, self.multiple, self.dtype)
            self._check_channels(out)
        out = out.float().contiguous()
        if self.stabilizer is not None and index is not None:
            self.stabilizer.blend_values((L_small / 100.0).clamp_(0, 1), out, index)
        out.mul_(self.ab_scale)  # at working size: both upsamplings are linear in it
        if self.guide is not None and index is not None:
            motion = self.stabilizer.last_motion if self.stabilizer is not None else None
            if defer:  # guided in the render step (phases): the serial predict step stays as fast
                self._deferred = (index, feats, motion)
                return out, L_small
            out = self.guide.apply(out, L_small, index, feats, motion)
        return out, L_small

    @property
    def prepares_input(self) -> bool:  # with keyframes or hints: the planning pass before the first chunk
        return self.guide is not None

    def prepare_input(self, path: Any, meta: Any, allow_truncated: bool = False) -> None:
        self.guide.prepare(path, meta, allow_truncated)

    def release(self) -> None:
        if self.guide is not None:
            self.guide.close()

    def _check_channels(self, out: torch.Tensor) -> None:
        if out.shape[1] != 2:
            raise WeightsError(f"weights {self.weights!r} give {out.shape[1]} channels, a colorizer must give 2 (ab)")

    def _upsample(self, ab_small: torch.Tensor, L_small: torch.Tensor, L: torch.Tensor) -> torch.Tensor:
        if self.guided and tuple(L_small.shape[-2:]) != tuple(L.shape[-2:]):
            ab = guided_upsample(ab_small, L_small / 100.0, L / 100.0)
        else:
            ab = resize(ab_small, tuple(L.shape[-2:]))
        return ab.clamp_(-128, 127)

    @property
    def accepts_grey(self) -> bool:
        """On CPU the stage needs only the luma of its input: a run hands it the coded Y' plane
        (``vidcolor.io.grey``) and takes yuv420p planes back when the writer can (``Chunk.yuv``),
        so no full-size frame is converted to or from RGB (see :meth:`_process_grey`). Not with
        ``keep_color``, which needs the input's colour."""
        return self.device.type == "cpu" and self.keep is None

    @property
    def inspects_input(self) -> bool:
        """Without ``keep_color``: look at frames sampled across the input for colour it already has."""
        return self.keep is None

    def inspect_input(self, frames: Any) -> None:
        message = colour_warning(frames)
        if message and message not in self.warnings:
            self.warnings.append(message)

    @property
    def accepts_uint8(self) -> bool:
        """On CPU the stage only needs L* of its input, which it computes from 8-bit values anyway
        (``lightness_8bit``): a run hands it the decoded uint8 frames, with no float conversion."""
        return self.device.type == "cpu"

    def phases(self) -> list[Stage]:
        """The stage as two pipeline steps for ``overlap.run_stages``, each in a thread of its own:
        the model and the stabilizer (in frame order), then the full- or half-size rendering of the
        chunk before. Only for luma input (``_process_grey``); the same frames as ``process``."""
        self._pending = collections.deque()  # predicted chunks waiting for their rendering
        from vidcolor.stages.phases import ColorizePhase

        return [ColorizePhase(self, "predict", self._pending), ColorizePhase(self, "render", self._pending)]

    @torch.inference_mode()
    def process(self, chunk: Chunk) -> Chunk:
        frames = chunk.frames
        if frames.dtype == torch.uint8 and frames.shape[1] == 1:
            return chunk.with_frames(self._process_grey(frames, chunk.index, chunk.yuv))
        if self.keep is None:
            return chunk.with_frames(self._process_rgb(frames, chunk.index))
        keep = self.keep.keep(frames, chunk.index)
        out = frames.float() / 255 if frames.dtype == torch.uint8 else frames.clone()
        start = 0
        for k in range(len(keep) + 1):  # colorize each run of frames in grey shots, in frame order
            if k == len(keep) or keep[k]:
                if k > start:
                    out[start:k] = self._process_rgb(frames[start:k], chunk.index + start).to(out.device, out.dtype)
                start = k + 1
        return chunk.with_frames(out)

    def _process_rgb(self, frames: torch.Tensor, index: int) -> torch.Tensor:
        """(T, 3, H, W) RGB frames (uint8 on CPU, else float) -> colorized float RGB."""
        parts = []
        for s in batches(frames.shape[0], self.batch_size):
            if frames.dtype == torch.uint8:  # decoded frames as they are (CPU): lightness_8bit reads them
                x = frames[s]
            else:
                x = frames[s].to(self.device, torch.float32)
            if x.device.type != "cpu":
                L = rgb_to_lightness(x)
                parts.append(lab_to_rgb_keep_lightness(L, self.colorize_L(L, index + s.start)).to(frames.device))
                continue
            # CPU: the full-size per-frame work (L* from the 8-bit frame: exact for decoded video and
            # 2x faster than a float Lab conversion; guided upsampling; Lab -> RGB) is split over two
            # threads, OpenCV and torch release the GIL; the model and the stabilizer stay in order.
            L = self._two_threads(lambda k: lightness_8bit(x[k]), len(x))
            ab_small, L_small = self._predict(L, index + s.start)
            parts.append(self._two_threads(
                lambda k: lab_to_rgb_keep_lightness(L[k], self._upsample(ab_small[k], L_small[k], L[k])), len(x)))
        return torch.cat(parts) if len(parts) != 1 else parts[0]

    def _process_grey(self, grey: torch.Tensor, index: int, yuv: tuple[int, bool] | None) -> torch.Tensor:
        """(T, 1, H, W) uint8 full-range luma on CPU -> yuv420p planes (T, 1, H * 3 / 2, W) in the
        coding ``yuv`` (even sizes), or RGB frames when ``yuv`` is None.

        L* is the grey's (a table: exactly ``lightness_8bit`` of the same grey RGB frame, so a
        black-and-white film is colorized as through RGB). For planes, everything after the model
        runs at half size, the size of 4:2:0 chroma: the grey's area average gives L* there, ab is
        guided-upsampled to it and turned into RGB keeping that L*, and
        :func:`vidcolor.io.grey.i420_from_luma` takes chroma from it and corrects the input's own
        full-size luma by the colour's luma difference. The full-size L* -> RGB -> Y'CbCr work of
        the RGB path (and the decoder's and encoder's conversions) disappears."""
        return self.render_grey(grey, yuv, *self.predict_grey(grey, index))

    def predict_grey(self, grey: torch.Tensor, index: int, defer: bool = False) -> tuple:
        """Luma -> (full-size L*, ab at working size (stabilized), L* at working size, what ``render_grey``
        needs to apply the guides: None unless ``defer``)."""
        import cv2

        from vidcolor.color import grey_lightness_table

        t, _, h, w = grey.shape
        src = grey.reshape(t, h, w).contiguous().numpy()
        table = grey_lightness_table()
        L = torch.from_numpy(np.stack([cv2.LUT(src[i], table) for i in range(t)])).view(t, 1, h, w)
        self._deferred = None
        ab_small, L_small = self._predict(L, index, defer)
        return L, ab_small, L_small, self._deferred

    def render_grey(self, grey: torch.Tensor, yuv: tuple[int, bool] | None, L: torch.Tensor,
                    ab_small: torch.Tensor, L_small: torch.Tensor, guide: tuple | None = None,
                    split: bool = True) -> torch.Tensor:
        """The rest of :meth:`_process_grey` after :meth:`predict_grey`; ``split``: over two threads
        (not when the rendering already has a pipeline thread of its own, which the split would slow)."""
        import cv2

        from vidcolor.color import grey_lightness_fast
        from vidcolor.io.grey import i420_from_luma

        run = self._two_threads if split else (lambda fn, n: fn(slice(0, n)))
        if guide is not None:
            ab_small = self.guide.apply(ab_small, L_small, guide[0], guide[1], guide[2])

        t, _, h, w = grey.shape
        src = grey.reshape(t, h, w).contiguous().numpy()
        if yuv is None or h % 2 or w % 2:
            ab = self._upsample(ab_small, L_small, L)
            return run(lambda k: lab_to_rgb_keep_lightness(L[k], ab[k]), t)
        unit = np.arange(256, dtype=np.float32) / np.float32(255)
        out = np.empty((t, h * 3 // 2, w), np.uint8)

        def planes(k: slice) -> torch.Tensor:
            idx = range(t)[k]
            g_half = torch.from_numpy(np.stack([
                cv2.resize(cv2.LUT(src[i], unit), (w // 2, h // 2), interpolation=cv2.INTER_AREA) for i in idx]))
            L_half = torch.from_numpy(grey_lightness_fast(g_half.numpy())).unsqueeze(1)
            rgb = lab_to_rgb_keep_lightness(L_half, self._upsample(ab_small[k], L_small[k], L_half))
            hwc = rgb.permute(0, 2, 3, 1)
            hwc = hwc.numpy() if hwc.is_contiguous() else hwc.contiguous().numpy()
            for j, i in enumerate(idx):
                i420_from_luma(src[i], g_half[j].numpy(), hwc[j], yuv, out=out[i])
            return torch.empty(0)

        run(planes, t)
        return torch.from_numpy(out).view(t, 1, h * 3 // 2, w)

    def _two_threads(self, fn, n: int) -> torch.Tensor:
        """``fn(slice)`` over the first and second half of ``n`` frames, the first half in a helper
        thread; concatenated. One frame: in this thread."""
        if n < 2:
            return fn(slice(0, n))
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="colorize")

        def in_mode(k: slice) -> torch.Tensor:
            with torch.inference_mode():  # grad mode is per thread
                return fn(k)

        half = n // 2
        first = self._pool.submit(in_mode, slice(0, half))
        second = fn(slice(half, n))
        return torch.cat([first.result(), second])

    # -- temporal state (the chroma stabilizer's) -------------------------------------------------
    def reset(self) -> None:
        self._pending.clear()  # predictions of the phases not rendered yet belong to the frames before
        if self.stabilizer is not None:
            self.stabilizer.reset()
        if self.keep is not None:
            self.keep.reset()
        if self.guide is not None:
            self.guide.reset()

    def state_dict(self) -> dict[str, Any]:
        state = self.stabilizer.state_dict() if self.stabilizer is not None else {}
        for part in (self.keep, self.guide):
            state.update(part.state_dict() if part is not None else {})
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.keep is not None:
            self.keep.load_state_dict(state)
            state = ShotColour.split(state)
        if self.guide is not None:
            self.guide.load_state_dict(state)
            state = self.guide.split(state)
        if self.stabilizer is not None:
            self.stabilizer.load_state_dict(state)
        else:
            super().load_state_dict(state)

    def describe(self) -> dict[str, Any]:
        d = {"stage": self.name, "weights": self.weights, "arch": self.config["arch"],
             "render_size": self.render_size, "guided": self.guided, "precision": self.precision,
             "compile": self.compile, "flip_tta": self.flip_tta, "tta_sigma": self.tta_sigma,
             "keep_color": self.keep is not None, "keyframes": self.options.keyframes, "hints": self.options.hints,
             "source_sha256": self.config.get("meta", {}).get("source_sha256"),
             "weights_sha256": self.config.get("meta", {}).get("weights_sha256")}
        if self.stabilizer is not None:
            d["temporal"] = {k: v for k, v in self.stabilizer.describe().items() if k != "stage"}
        return d
