"""Monochrome frames without RGB: the decoder's luma plane in, the encoder's luma plane out.

A style whose output is monochrome (``noir``) needs nothing from a frame but its luma, and its
output is luma with neutral chroma. Decoded video is Y'CbCr already, so the luma is the Y' plane
as it was coded: copying that plane (and mapping limited to full range through a table) costs
~0.2 ms a frame at 854x480, where the conversion to RGB costs ~1.2 ms and ``to_ndarray("gray")``
(swscale) ~4 ms; on the way out the grey frame goes straight into the encoder's Y' plane with
constant chroma, instead of an RGB -> Y'CbCr conversion. The grey values are full range
(0 = black, 255 = white), so a grade sees the same scale as in RGB.

The luma is the source's own Y' (its matrix: BT.709 for HD, BT.601 for most SD video), which is
what ``ffmpeg -vf format=gray`` or ``hue=s=0`` keep; the RGB path's Rec.709 luma of decoded RGB
equals it for BT.709 sources to within rounding.
"""

from __future__ import annotations

import av
import cv2
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
        # cv2.LUT: 0.18 ms a frame at 854x480 against 1.16 ms for numpy's fancy indexing
        return y.copy() if _is_full_range(name, frame.color_range) else cv2.LUT(y, _EXPAND)
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
        np.copyto(_plane(frame.planes[0], w), grey if full else cv2.LUT(grey, _SHRINK))
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


# -- colour from luma + low-resolution RGB: yuv420p planes without a full-size RGB frame ----------
# swscale colour-space code -> (Kr, Kb) of its Y'CbCr matrix (the writer encodes with these codes).
LUMA_COEFFS = {1: (0.2126, 0.0722), 4: (0.30, 0.11), 5: (0.299, 0.114), 7: (0.212, 0.087), 9: (0.2627, 0.0593)}
# FFmpeg colour-space tag -> the swscale matrix used for RGB <-> Y'CbCr (unknown tags: BT.601).
SWS_SPACE = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}


def output_coding(color_codes: tuple[int, int, int, int]) -> tuple[int, bool]:
    """The (swscale matrix code, full range) the writer encodes a source with these colour tags in."""
    space, rng = color_codes[0], color_codes[1]
    return SWS_SPACE.get(space, 5), rng == 2


def _ycc_matrix(coding: tuple[int, bool]) -> tuple[np.ndarray, float, float]:
    """(3x4 affine matrix: RGB in [0, 1] -> Y', Cb, Cr code values; Y' offset; Y' scale)."""
    kr, kb = LUMA_COEFFS.get(coding[0], LUMA_COEFFS[5])
    kg = 1 - kr - kb
    off_y, sy, sc = (0.0, 255.0, 255.0) if coding[1] else (16.0, 219.0, 224.0)
    sb, sr = 0.5 / (1 - kb), 0.5 / (1 - kr)
    m = np.array([[sy * kr, sy * kg, sy * kb, off_y],
                  [-sc * sb * kr, -sc * sb * kg, sc * sb * (1 - kb), 128.0],
                  [sc * sr * (1 - kr), -sc * sr * kg, -sc * sr * kb, 128.0]], np.float32)
    return m, off_y, sy


def i420_from_luma(luma: np.ndarray, luma_half: np.ndarray, rgb_half: np.ndarray, coding: tuple[int, bool],
                   out: np.ndarray | None = None) -> np.ndarray:
    """Planes of a yuv420p frame ``(H * 3 / 2, W)`` uint8 (PyAV's ``to_ndarray("yuv420p")`` layout)
    from the full-size grey ``luma`` (H, W) uint8 (full range), the same grey at half size
    ``luma_half`` (H/2, W/2) float32 in [0, 1] (area average), and the colour the frame should
    have at half size ``rgb_half`` (H/2, W/2, 3) float32 sRGB in [0, 1] (its lightness that of
    ``luma_half``). ``coding``: (matrix code, full range), see :func:`output_coding`.

    Chroma comes from ``rgb_half`` (4:2:0 keeps chroma at half size anyway). Luma is the input's
    own, corrected by how much the colour's luma differs from the grey's at half size (a colour
    of the same lightness has a different gamma-encoded luma than its grey): upsampled, that
    correction keeps the output's lightness that of the input within what half-size colour can
    express, without converting a full-size frame to or from RGB."""
    h, w = luma.shape
    if h % 2 or w % 2:
        raise ValueError(f"yuv420p needs an even frame size, got {w}x{h}")
    m, off_y, sy = _ycc_matrix(coding)
    ycc = cv2.transform(rgb_half, m)  # (H/2, W/2, 3) code values
    y_half, cb, cr = cv2.split(ycc)
    # colour luma - grey luma at half size, in code values
    d_luma = cv2.addWeighted(y_half, 1.0, luma_half, -sy, -off_y)
    y = cv2.resize(d_luma, (w, h), interpolation=cv2.INTER_LINEAR)
    cv2.add(y, cv2.LUT(luma, _luma_codes(coding[1])), dst=y)
    if out is None:
        out = np.empty((h * 3 // 2, w), np.uint8)
    flat = out.reshape(-1)
    q = h * w // 4
    # code values are >= 0 but for rounding noise near black in full range: clip, round, saturate
    cv2.convertScaleAbs(cv2.max(y, 0.0), dst=out[:h])
    flat[h * w:h * w + q] = cv2.convertScaleAbs(cv2.max(cb, 0.0)).reshape(-1)
    flat[h * w + q:] = cv2.convertScaleAbs(cv2.max(cr, 0.0)).reshape(-1)
    return out


_CODES: dict[bool, np.ndarray] = {}


def _luma_codes(full: bool) -> np.ndarray:
    """(256,) float32: the Y' code value of each full-range grey level."""
    if full not in _CODES:
        v = np.arange(256, dtype=np.float32)
        _CODES[full] = v if full else (16 + v * np.float32(219 / 255)).astype(np.float32)
    return _CODES[full]
