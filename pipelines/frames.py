"""Frames between the reader, the stages and the writer: the formats a run's frames travel in
(``FramePlan``) and the conversions between decoded uint8 frames and the stages' tensors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vidcolor.io.probe import VideoMeta
from vidcolor.io.writer_base import yuv420_coding
from vidcolor.stages.base import Stage


def to_tensor(frames: np.ndarray, device: torch.device) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, 3, H, W) float32 in [0, 1] on ``device``. To a GPU the uint8
    frames go through pinned (page-locked) memory, so the copy is asynchronous (non_blocking)."""
    if device.type == "cpu" and frames.dtype == np.uint8 and frames.ndim == 4 and frames.flags.c_contiguous:
        # numpy's divide gives torch's convert-then-divide values in one pass (no uint8 -> float copy first)
        out = np.divide(frames, np.float32(255), dtype=np.float32)
        return torch.from_numpy(out).permute(0, 3, 1, 2)  # channels-last memory
    t = torch.from_numpy(frames)
    if device.type == "cuda":
        t = t.pin_memory()
    t = t.to(device, non_blocking=True)
    return t.permute(0, 3, 1, 2).float().div_(255)


def takes_uint8(stages: list[Stage], device: torch.device) -> bool:
    """True when every stage takes the decoded 8-bit frames as they are (``accepts_uint8``, e.g.
    the noir and sepia grades): the run then skips the uint8 -> float -> uint8 conversions."""
    return device.type == "cpu" and bool(stages) and all(s.accepts_uint8 for s in stages)


def takes_grey(stages: list[Stage], device: torch.device) -> bool:
    """True when every stage needs only the luma of its input (``accepts_grey``: the noir grade, the
    Colorize stage on CPU): the run then decodes only the coded Y' plane (``vidcolor.io.grey``), and
    the stages give grey frames (noir: encoded with neutral chroma), or yuv420p planes when the
    writer takes them (``Chunk.yuv``; Colorize), or RGB: no RGB conversion on the way in, and
    none on the way out unless a stage gives RGB."""
    return device.type == "cpu" and bool(stages) and all(s.accepts_grey for s in stages)


@dataclass(frozen=True)
class FramePlan:
    """How frames travel through a run, decided once from its stages and its writer: ``grey``, the
    reader decodes luma only; ``uint8``, the stages get 8-bit frames (no float conversion); ``yuv``,
    the coding the writer takes yuv420p planes in (``Chunk.yuv``) or None."""

    grey: bool
    uint8: bool
    yuv: tuple[int, bool] | None


def frame_plan(stages: list[Stage], device: torch.device, encoder: str, codec: str, pix_fmt: str | None,
               meta: VideoMeta) -> FramePlan:
    grey = takes_grey(stages, device)
    # yuv420p planes only from the last stage (they go to the writer, no stage reads them)
    yuv = yuv420_coding(encoder, codec, pix_fmt, meta) if grey and len(stages) == 1 else None
    return FramePlan(grey=grey, uint8=grey or takes_uint8(stages, device), yuv=yuv)


def frames_in(frames: np.ndarray, device: torch.device, uint8: bool) -> torch.Tensor:
    """Decoded (T, H, W, C) uint8 -> the stages' input: float (``to_tensor``) or, when ``uint8``, a
    (T, C, H, W) uint8 view of the same memory (C = 1 for a grey reader)."""
    return torch.from_numpy(frames).permute(0, 3, 1, 2) if uint8 else to_tensor(frames, device)


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """(T, 3, H, W) float in [0, 1] -> (T, H, W, 3) uint8 (rounded to nearest, saturated).

    CPU float32 frames go through OpenCV: channels-last frames (what the OpenCV colour paths
    give) are converted in place of the transposing copy, planar ones interleaved by
    ``cv2.merge`` first: OpenCV's saturating conversion is a fraction of torch's per-op cost."""
    frames = frames.detach()
    if frames.dtype == torch.uint8:  # a uint8 path (``frames_in``): a view back, copied only if planar
        return frames.permute(0, 2, 3, 1).contiguous().cpu().numpy()
    if frames.device.type == "cpu" and frames.dtype == torch.float32 and frames.dim() == 4 and frames.shape[1] == 3:
        import cv2

        from vidcolor.color import to_uint8_cv2

        n, _, h, w = frames.shape
        out = np.empty((n, h, w, 3), np.uint8)
        hwc = frames.permute(0, 2, 3, 1)
        src = hwc.numpy() if hwc.is_contiguous() else None
        planes = frames.contiguous().numpy() if src is None else None
        tmp = np.empty((h, w, 3), np.float32)
        for i in range(n):
            if src is None:
                cv2.merge([planes[i, 0], planes[i, 1], planes[i, 2]], dst=tmp)
            to_uint8_cv2(tmp if src is None else src[i], out[i])
        return out
    x = frames.float().mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).contiguous().cpu().numpy()
