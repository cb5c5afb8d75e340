"""Monochrome frames without RGB: the decoder's luma plane in, the encoder's luma plane out.

A style whose output is monochrome (``noir``) needs nothing from a frame but its luma, and its
output is luma with neutral chroma. Decoded video is Y'CbCr already, so the luma is the Y' plane
as it was coded: copying that plane (and mapping limited to full range through a table) costs
~0.05 ms a frame at 854x480, where the conversion to RGB costs ~1.2 ms and ``to_ndarray("gray")``
(swscale) ~4 ms; on the way out the grey frame goes straight into the encoder's Y' plane with
constant chroma, instead of an RGB -> Y'CbCr conversion. The grey values are full range
(0 = black, 255 = white), so a grade sees the same scale as in RGB.

The luma is the source's own Y' (its matrix: BT.709 for HD, BT.601 for most SD video), which is
what ``ffmpeg -vf format=gray`` or ``hue=s=0`` keep; the RGB path's Rec.709 luma of decoded RGB
equals it for BT.709 sources to within rounding.
"""

from __future__ import annotations

import av
import numpy as np

# 8-bit planar Y'CbCr formats whose first plane is Y' (nv12/nv21 keep Y' first too).
_PLANAR_8 = {"yuv420p", "yuv422p", "yuv444p", "yuv410p", "yuv411p", "yuv440p", "nv12", "nv21",
             "yuvj420p", "yuvj422p", "yuvj444p", "yuvj440p", "yuvj411p", "gray"}
# 10-bit little-endian planar formats the encoders take (prores_ks, x265 10-bit).
_PLANAR_10 = {"yuv420p10le", "yuv422p10le", "yuv444p10le"}

_EXPAND = np.clip(np.round((np.arange(256) - 16) * (255 / 219)), 0, 255).astype(np.uint8)  # limited -> full
_SHRINK = np.round(16 + np.arange(256) * (219 / 255)).astype(np.uint8)  # full -> limited


def _is_full_range(frame_format: str, color_range: int | None) -> bool:
    return color_range == 2 or frame_format.startswith("yuvj") or frame_format == "gray"


def _plane(plane: av.video.plane.VideoPlane, width: int, dtype=np.uint8) -> np.ndarray:
    """A writable (H, W) view of one plane (rows are ``line_size`` bytes apart)."""
    itemsize = np.dtype(dtype).itemsize
    return np.frombuffer(plane, dtype).reshape(plane.height, plane.line_size // itemsize)[:, :width]


def luma_from_frame(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame's luma as (H, W) uint8, full range (not yet rotated upright)."""
    name = frame.format.name
    if name in _PLANAR_8:
        y = _plane(frame.planes[0], frame.width)
        return y.copy() if _is_full_range(name, frame.color_range) else _EXPAND[y]
    if name in _PLANAR_10 or name in ("yuv420p12le", "yuv422p12le", "yuv444p12le"):
        bits = 10 if name in _PLANAR_10 else 12
        y = _plane(frame.planes[0], frame.width, np.dtype("<u2")).astype(np.float32)
        if frame.color_range == 2:
            v = y * (255 / ((1 << bits) - 1))
        else:
            v = (y - (16 << (bits - 8))) * (255 / (219 << (bits - 8)))
        return np.clip(np.rint(v), 0, 255).astype(np.uint8)
    # RGB, palette and other sources: swscale's own luma (slower, rare for film).
    return frame.to_ndarray(format="gray", src_color_range=frame.color_range or None)


def frame_from_luma(grey: np.ndarray, pix_fmt: str, full_range: bool) -> av.VideoFrame | None:
    """(H, W) uint8 full-range grey -> a frame in ``pix_fmt`` with neutral chroma, or None when
    ``pix_fmt`` is not a planar Y'CbCr format this can fill (the caller converts from RGB then)."""
    h, w = grey.shape
    if pix_fmt in _PLANAR_8 and pix_fmt != "gray":
        frame = av.VideoFrame(w, h, pix_fmt)
        full = full_range or pix_fmt.startswith("yuvj")
        np.copyto(_plane(frame.planes[0], w), grey if full else _SHRINK[grey])
        for p in frame.planes[1:]:
            np.frombuffer(p, np.uint8)[:] = 128
        return frame
    if pix_fmt in _PLANAR_10:
        frame = av.VideoFrame(w, h, pix_fmt)
        g = grey.astype(np.float32)
        y = g * (1023 / 255) if full_range else 64 + g * (876 / 255)
        np.copyto(_plane(frame.planes[0], w, np.dtype("<u2")), np.rint(y).astype(np.uint16))
        for p in frame.planes[1:]:
            np.frombuffer(p, np.dtype("<u2"))[:] = 512
        return frame
    return None
