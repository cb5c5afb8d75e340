"""Flow-guided temporal stabilizer: removes per-frame colour flicker of a frame-by-frame model.

For frame t (ARCHITECTURE.md, "Temporal consistency"; the blending follows the online
post-processing idea of Lai et al., ECCV 2018, with their occlusion test):

1. Working frames: Rec.709 luma of the *input* (``chunk.source``), area-downscaled so the short
   side is at most ``flow_size``. Flow, masks and the scene-cut test run at this size; only the
   final warp and blend run at full resolution.
2. Flow ``F`` from t to t-1 and ``B`` from t-1 to t on the working frames (``warp(in_{t-1}, F) ~=
   in_t``).
3. Confidence ``m`` (1 = trust the past) = forward-backward and motion-boundary check
   (``occlusion_mask``, Lai et al. §4) x photometric check (the warped previous input matches the
   current input within ``photo_tol`` after removing a global brightness change, so film flicker
   does not disable the stabilizer) x inside-the-frame mask, then eroded by one working pixel so
   colours do not bleed across object edges, and upsampled.
4. ``out_t = m*s*warp(out_{t-1}, F) + (1 - m*s)*current_t`` with strength ``s``. In ``ab`` mode the
   blend acts on the Lab chroma and the current frame's L is kept (colorization: luminance stays
   the input's); in ``rgb`` mode on RGB (stylization).
5. Scene cut: when more than ``scene_cut`` of the frame fails the photometric check even after
   motion compensation, the past is dropped (out_t = current_t) and t is appended to
   ``scene_cuts``.

The state (previous working-size input luma, previous output chroma or RGB, next frame index) is
carried across chunks and exposed by ``state_dict()``: any chunking of a video gives the same
result, and a resumed run continues exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.color import LUMA_709, cv2_convert, lab_to_rgb, rgb_to_lab
from vidcolor.flow import FlowEstimator, get_flow_estimator, occlusion_mask, resize_flow, to_grey, warp
from vidcolor.stages.base import Chunk, Stage, StageContext, StageOptions, option, register_stage

MODES = ("auto", "ab", "rgb")
_MODE_CODE = {"ab": 0, "rgb": 1}
# ``mode="auto"`` picks "ab" when the first output frame keeps the input's luma (a colorizer
# merges predicted chroma with the original L), "rgb" otherwise. Mean abs luma difference in [0, 1].
_AUTO_LUMA_TOL = 0.02


def _lab(rgb: torch.Tensor) -> torch.Tensor:
    """RGB (T, 3, H, W) in [0, 1] -> Lab. OpenCV on CPU (float32, about 10x faster than the torch
    formula; within half a Lab unit of ``vidcolor.color.rgb_to_lab``), the torch formula elsewhere."""
    if rgb.device.type != "cpu":
        return rgb_to_lab(rgb)
    import cv2

    return cv2_convert(rgb, cv2.COLOR_RGB2Lab)


def _rgb(lab: torch.Tensor) -> torch.Tensor:
    """Lab (T, 3, H, W) -> RGB in [0, 1] (OpenCV on CPU, same values as ``lab_to_rgb`` to 1e-4)."""
    if lab.device.type != "cpu":
        return lab_to_rgb(lab)
    import cv2

    return cv2_convert(lab, cv2.COLOR_Lab2RGB).clamp_(0, 1)


def _erode(conf: torch.Tensor) -> torch.Tensor:
    """3x3 minimum filter of (N, 1, h, w) in [0, 1] (cv2.erode on CPU: ~20x faster than max_pool2d)."""
    if conf.device.type != "cpu":
        return -F.max_pool2d(-conf, kernel_size=3, stride=1, padding=1)
    import cv2

    kernel = np.ones((3, 3), np.uint8)
    arr = conf[:, 0].contiguous().numpy()
    out = np.stack([cv2.erode(c, kernel, borderType=cv2.BORDER_REPLICATE) for c in arr])
    return torch.from_numpy(out).unsqueeze(1)


def _blend(cur: torch.Tensor, prev: torch.Tensor, flow: torch.Tensor, conf: torch.Tensor,
           strength: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``cur += s * m * (warp(prev, flow) - cur)`` at full size, with the working-size ``flow``
    (2, h, w) and confidence ``conf`` (1, h, w) resized to it. ``cur`` and ``prev`` are (C, H, W);
    ``cur`` is updated in place. Returns the weight ``s * m`` (1, H, W) and the blended frame (the
    values of ``cur``, in channels-last memory: the next call's ``prev`` without a copy).

    On CPU the resizes, the warp and the blend are OpenCV's (``cv2.resize``, ``cv2.remap``,
    ``cv2.blendLinear``: the same bilinear geometry and border replication as
    :func:`vidcolor.flow.warp`; OpenCV 4.x rounds sample positions to 1/32 pixel, 5.x does too for
    two channels and samples one and three exactly); ``grid_sample`` and ``interpolate`` at 854x480
    were two thirds of the stage's time."""
    _, height, width = cur.shape
    if cur.device.type != "cpu" or cur.dtype != torch.float32:
        wk = F.interpolate(conf[None], size=(height, width), mode="bilinear", align_corners=False)[0]
        wk.mul_(strength)
        past = warp(prev[None], resize_flow(flow[None], (height, width)))[0]
        cur.add_(past.sub_(cur).mul_(wk))
        return wk, cur
    import cv2

    h, w = flow.shape[-2:]
    small = (flow.permute(1, 2, 0) * torch.tensor([width / w, height / h])).numpy()
    grid = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    cv2.add(grid, _pixel_grid(height, width), dst=grid)
    src = np.ascontiguousarray(prev.permute(1, 2, 0).numpy())  # free when prev came from here
    past = cv2.remap(src, grid, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    wk = cv2.resize(conf[0].contiguous().numpy(), (width, height), interpolation=cv2.INTER_LINEAR)
    wk *= strength
    view = cur.permute(1, 2, 0).numpy()  # writes go to cur
    out = cv2.blendLinear(np.ascontiguousarray(view), past, 1.0 - wk, wk)
    if out.ndim == 2:
        out = out[..., None]
    view[...] = out
    return torch.from_numpy(wk)[None], torch.from_numpy(out).permute(2, 0, 1)


_GRID: dict[tuple[int, int], np.ndarray] = {}


def _pixel_grid(height: int, width: int) -> np.ndarray:
    """(H, W, 2) float32 pixel coordinates (x, y), cached per size."""
    if (height, width) not in _GRID:
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        _GRID.clear()
        _GRID[(height, width)] = np.ascontiguousarray(np.stack([xs, ys], -1))
    return _GRID[(height, width)]


@dataclass(frozen=True)
class StabilizeOptions(StageOptions):
    """The keys of a ``type = "stabilize"`` table (see :class:`Stabilize`); the CLI's ``--temporal``
    sets ``strength``, ``--flow`` sets ``flow``."""

    strength: float = option(0.6, float, 0, 1)
    flow: str = option("auto", str)
    mode: str = option("auto", str, choices=MODES)
    scene_cut: float = option(0.35, float, 0, 1, lo_open=True)
    flow_size: int = option(240, int, 16, 4096)
    photo_tol: float = option(0.05, float, 0, 1, lo_open=True)
    threads: int = option(1, int, 0, 256)


@register_stage("stabilize")
class Stabilize(Stage):
    """Temporal stabilizer stage (see module docstring).

    Args:
        strength: ``s`` in [0, 1]; 0 passes frames through untouched, 0.6 removes most flicker
            while new colours still take over within a few frames.
        flow: estimator name (``"auto"``, ``"dis"``, ``"raft_small"``, ``"raft_large"``) or a
            ``FlowEstimator`` instance.
        mode: ``"ab"`` (blend Lab chroma, keep L), ``"rgb"`` or ``"auto"`` (decided on the first
            frame: ``ab`` if the frames keep the input's luma).
        scene_cut: share of the frame in (0, 1] that must fail the motion-compensated photometric
            check to call a cut; ``1`` disables cut detection (a frame can never exceed it).
        flow_size: short side of the working frames for flow and masks (pixels).
        photo_tol: luma difference (in [0, 1]) below which warped previous input and current input
            agree; confidence falls linearly to 0 at twice this value.
        device: where RAFT runs when ``flow`` names it (default: CUDA if available).
        threads: torch intra-op threads while the stage runs on CPU, restored afterwards (0 keeps
            torch's setting). 1 by default: per-frame tensors are small and the loop is sequential,
            so thread synchronisation costs more than it saves, and far more when the decoder and
            encoder threads compete for the same cores.

    Reads ``ctx.overrides`` keys ``temporal`` (replaces ``strength``) and ``flow``.
    """

    Options: ClassVar[type[StageOptions]] = StabilizeOptions
    overrides: ClassVar[frozenset[str]] = frozenset({"temporal", "flow"})
    override_fields: ClassVar[dict[str, str]] = {"temporal": "strength"}

    def __init__(self, strength: float = 0.6, flow: str | FlowEstimator = "auto", mode: str = "auto",
                 scene_cut: float = 0.35, flow_size: int = 240, photo_tol: float = 0.05,
                 device: str | torch.device | None = None, threads: int = 1) -> None:
        self.options = StabilizeOptions(strength=strength, flow=flow if isinstance(flow, str) else "auto", mode=mode,
                                        scene_cut=scene_cut, flow_size=flow_size, photo_tol=photo_tol,
                                        threads=threads)
        self.strength = float(strength)
        self.mode = mode
        self.scene_cut = float(scene_cut)
        self.flow_size = int(flow_size)
        self.photo_tol = float(photo_tol)
        self.threads = int(threads)
        if isinstance(flow, str):
            self._flow_name = flow
            self.flow: FlowEstimator | None = None
            if self.strength > 0:  # build now so a bad name or missing weights fail before decoding
                self.flow, self.flow_description = get_flow_estimator(flow, device=device)
            else:
                self.flow_description = "none (strength 0)"
        else:
            if not callable(flow):
                raise TypeError(f"flow must be a name or a FlowEstimator, got {type(flow).__name__}")
            self._flow_name = getattr(flow, "name", type(flow).__name__)
            self.flow = flow
            self.flow_description = self._flow_name
        self.reset()

    # -- state -----------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything: previous frames, resolved ``auto`` mode and the scene-cut list."""
        self._prev_grey: torch.Tensor | None = None  # (1, h, w) working-size luma of input t-1
        self._prev_out: torch.Tensor | None = None   # (2, H, W) ab or (3, H, W) RGB of output t-1
        self._next_index: int | None = None
        self._resolved: str | None = None if self.mode == "auto" else self.mode
        self.scene_cuts: list[int] = []
        self.frames_blended = 0
        self.last_motion: tuple[int, torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self.last_reverse: torch.Tensor | None = None

    def _forget(self) -> None:
        self._prev_grey = None
        self._prev_out = None

    def state_dict(self) -> dict[str, Any]:
        """All tensors: ``prev_grey`` (1, h, w), ``prev_out`` (2 or 3, H, W), ``next_index``,
        ``mode`` (0 ab / 1 rgb), ``scene_cuts`` (K,) int64, ``frames_blended``; keys absent
        when unknown yet."""
        state: dict[str, Any] = {"scene_cuts": torch.tensor(self.scene_cuts, dtype=torch.int64),
                                 "frames_blended": torch.tensor(self.frames_blended, dtype=torch.int64)}
        if self._prev_grey is not None and self._prev_out is not None:
            state["prev_grey"] = self._prev_grey.clone()
            state["prev_out"] = self._prev_out.clone()
        if self._next_index is not None:
            state["next_index"] = torch.tensor(self._next_index, dtype=torch.int64)
        if self._resolved is not None:
            state["mode"] = torch.tensor(_MODE_CODE[self._resolved], dtype=torch.int64)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        known = {"prev_grey", "prev_out", "next_index", "mode", "scene_cuts", "frames_blended"}
        if set(state) - known:
            raise ValueError(f"unexpected stabilize state keys {sorted(set(state) - known)} (expected {sorted(known)})")
        if ("prev_grey" in state) != ("prev_out" in state):
            raise ValueError("stabilize state needs both prev_grey and prev_out, or neither")
        self.reset()
        if "prev_grey" in state:
            self._prev_grey = state["prev_grey"].detach().clone().float()
            self._prev_out = state["prev_out"].detach().clone().float()
        if "next_index" in state:
            self._next_index = int(state["next_index"])
        if "mode" in state:
            code = int(state["mode"])
            self._resolved = {v: k for k, v in _MODE_CODE.items()}[code]
        self.scene_cuts = [int(i) for i in torch.as_tensor(state.get("scene_cuts", [])).tolist()]
        self.frames_blended = int(state.get("frames_blended", 0))

    def describe(self) -> dict[str, Any]:
        return {"stage": self.name, "strength": self.strength, "flow": self.flow_description,
                "mode": self._resolved or self.mode, "scene_cut": self.scene_cut,
                "scene_cuts": list(self.scene_cuts)}

    @classmethod
    def from_options(cls, options: StageOptions, ctx: StageContext) -> Stabilize:
        return cls(**options.as_kwargs(), device=ctx.device)

    # -- processing ------------------------------------------------------------------------
    def _working(self, frames: torch.Tensor) -> torch.Tensor:
        """(T, 3, H, W) RGB -> (T, 1, h, w) float32 luma with short side <= flow_size (area filter)."""
        x = frames.float()
        grey = x[:, 0:1] * LUMA_709[0]
        grey.add_(x[:, 1:2], alpha=LUMA_709[1]).add_(x[:, 2:3], alpha=LUMA_709[2])
        h, w = grey.shape[-2:]
        scale = self.flow_size / min(h, w)
        if scale >= 1:
            return grey
        size = (max(8, round(h * scale)), max(8, round(w * scale)))
        if grey.device.type != "cpu":
            return F.interpolate(grey, size=size, mode="area")
        import cv2  # INTER_AREA: exact box filter, an order of magnitude faster than torch's adaptive pooling

        small = [cv2.resize(g, (size[1], size[0]), interpolation=cv2.INTER_AREA) for g in grey[:, 0].numpy()]
        return torch.from_numpy(np.stack(small)).unsqueeze(1)

    def confidence(self, cur: torch.Tensor, prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Working-size flow t->t-1 (N, 2, h, w), confidence (N, 1, h, w) in [0, 1], cut score (N,).
        The flow t-1->t it also computes is kept in ``last_reverse`` (the same test run the other
        way, :meth:`flow_confidence` ``(bw, fw, prev, cur)``, needs no new flow)."""
        fw = self.flow(cur, prev)   # t -> t-1: warp(prev, fw) ~= cur
        bw = self.flow(prev, cur)   # t-1 -> t
        self.last_reverse = bw
        return self.flow_confidence(fw, bw, cur, prev)

    def flow_confidence(self, fw: torch.Tensor, bw: torch.Tensor, cur: torch.Tensor,
                        prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`confidence` with both flows given (``fw``: cur -> prev, ``bw``: prev -> cur)."""
        reliable = occlusion_mask(fw, bw)
        warped, inside = warp(prev, fw, return_mask=True)
        residual = warped - cur
        # Remove a global brightness change (film flicker, exposure) before the photometric test.
        # (median of every 7th pixel: the same estimate at a seventh of the cost)
        offset = residual.flatten(1)[:, ::7].median(dim=1).values.view(-1, 1, 1, 1)
        photo = (2.0 - (residual - offset).abs() / self.photo_tol).clamp(0, 1)
        cut_score = (1.0 - photo).flatten(1).mean(dim=1)
        conf = reliable * photo * inside
        conf = _erode(conf)  # no bleeding of the past across object edges
        return fw, conf, cut_score

    def _resolve_mode(self, frames: torch.Tensor, source: torch.Tensor) -> str:
        first = frames[:1].float()
        if first.shape[-2:] != source.shape[-2:]:  # after a stage that resized (upscale): at the input's size
            first = F.interpolate(first, size=tuple(source.shape[-2:]), mode="area")
        d = (to_grey(first) - to_grey(source[:1].float())).abs().mean().item()
        return "ab" if d < _AUTO_LUMA_TOL else "rgb"

    def process(self, chunk: Chunk) -> Chunk:
        """Stabilize a chunk; ``chunk.source`` (input frames) drives flow and cuts, falling back to
        ``chunk.frames`` when None. Returns a chunk with the same index/pts/source."""
        if self.strength == 0 or len(chunk) == 0:
            return chunk
        saved = torch.get_num_threads()
        if self.threads and chunk.frames.device.type == "cpu" and saved != self.threads:
            torch.set_num_threads(self.threads)
            try:
                return self._process(chunk)
            finally:
                torch.set_num_threads(saved)
        return self._process(chunk)

    def _process(self, chunk: Chunk) -> Chunk:
        frames = chunk.frames
        source = chunk.source if chunk.source is not None else frames
        (h, w), (sh, sw) = frames.shape[-2:], source.shape[-2:]
        if source.shape[:2] != frames.shape[:2] or h * sw != w * sh:  # an upscale before may scale H and W
            raise ValueError(f"chunk.source shape {tuple(source.shape)} differs from frames {tuple(frames.shape)}")
        if self._resolved is None:
            self._resolved = self._resolve_mode(frames, source)
        grey = self._working(source.to(frames.device))
        if self._resolved == "ab":
            lab = _lab(frames.float())
            current = lab[:, 1:]  # blended in place: lab ends up holding (L_t, blended ab_t)
        else:
            lab = None
            current = frames.float().clone()
        n = len(chunk)
        blended, weights = self.blend_values(grey, current, chunk.index)
        if lab is not None:
            rgb = _rgb(lab).to(frames.dtype)
            for k in range(n):
                if not blended[k]:
                    rgb[k] = frames[k]  # nothing blended: the frame itself, no Lab round trip
                else:  # and the same where the weight is 0 (unreliable pixels)
                    rgb[k] = torch.where(weights[k] > 0, rgb[k], frames[k])
            result = rgb
        else:
            result = current.clamp_(0, 1).to(frames.dtype)
        return chunk.with_frames(result)

    def blend_values(self, grey: torch.Tensor, current: torch.Tensor,
                     index: int) -> tuple[list[bool], list[torch.Tensor | None]]:
        """The temporal core, for frames ``index ... index + T - 1``: ``grey`` (T, 1, h, w) working-size
        luma of the input in [0, 1] drives flow, confidence and cuts; ``current`` (T, C, H, W) float32
        (RGB, Lab chroma, or a model's chroma at its working size) is blended in place with the warped
        previous result. Returns per frame whether it was blended and the weight map ``s * m``
        (1, H, W) (None where not blended). The Colorize stage calls this directly to stabilize chroma
        at the model's working size."""
        n, dev = current.shape[0], current.device
        if self._next_index is not None and index != self._next_index:
            self._forget()  # not the continuation of the last chunk (seek, new video): no past to use
        if self._prev_out is not None and (self._prev_out.shape != current.shape[1:]
                                           or self._prev_grey.shape != grey.shape[1:]):
            self._forget()
        prev_greys = torch.cat([self._prev_grey[None].to(dev), grey[:-1]]) if self._prev_grey is not None else grey[:-1]
        first = 0 if self._prev_grey is not None else 1  # first frame of the chunk with a past
        if n - first > 0:
            fw, conf, cut_score = self.confidence(grey[first:], prev_greys)
            cuts = (cut_score > self.scene_cut).tolist()
        else:
            cuts = []
        blended = [False] * n
        weights: list[torch.Tensor | None] = [None] * n
        prev_out = self._prev_out.to(dev) if self._prev_out is not None else None
        for k in range(n):
            j = k - first
            if prev_out is not None and j >= 0:
                if cuts[j]:
                    self.scene_cuts.append(index + k)
                else:
                    weights[k], prev_out = _blend(current[k], prev_out, fw[j], conf[j], self.strength)
                    blended[k] = True
                    self.frames_blended += 1
                    continue
            prev_out = current[k]
        self._prev_grey = grey[-1].clone(memory_format=torch.contiguous_format)
        self._prev_out = prev_out.clone(memory_format=torch.preserve_format)
        self._next_index = index + n
        # the motion test of frames index + first ..: guides carried with the same flow reuse it
        # (start, flows t -> t-1, confidences, flows t-1 -> t)
        self.last_motion = (index + first, fw, conf, self.last_reverse) if n - first > 0 else None
        return blended, weights
