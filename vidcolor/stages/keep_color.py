"""Colour already in a colorizer's input: how much there is, per frame, per shot and per film.

The measure (:func:`colour_stats`), on each frame area-downscaled to a short side of
``ANALYSIS_SIZE``, in CIE Lab (:func:`vidcolor.color.rgb_to_lab`):

- ``chroma``: mean C*ab = sqrt(a*^2 + b*^2) over the pixels, reported in messages;
- ``share``: the share of pixels whose (a*, b*) lies more than ``COLOUR_DELTA`` from the mean
  (a*, b*) of the pixels of the same lightness (bands of ``TINT_BAND`` L*). A frame "has colour"
  when ``share >= COLOUR_SHARE``.

Removing the mean colour of each lightness band first is what keeps toned and tinted
black-and-white film grey: sepia toning, a slight tint of a scan or a blue night tint give every
pixel of one lightness the same colour, however strong (mean C*ab 14 to 24 for sepia, 3.7 for a
slight tint: all 0.0 to 0.33 % of pixels away from their band by more than 10, encoded with x264
at crf 23 to 30), while colour footage has pixels of the same lightness in different colours (1 %
to 84 % of pixels, the mean over a clip's frames, on the shared colour clips). The price: a clip
whose colour is little more than a tint counts as grey (``moviepy_sintel_2s.mp4``, snow in a faint
blue, 0.07 %).

``ShotColour`` decides per shot for ``--keep-color``: at the first frame of a video and at each
scene cut (the stabilizer's test, :meth:`vidcolor.stages.stabilize.Stabilize.blend_values`: more
than ``scene_cut`` of the frame fails the motion-compensated photometric check) the shot is
measured on that frame, and the answer holds until the next cut, so it never changes inside a shot.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vidcolor.color import rgb_to_lab, rgb_to_luma
from vidcolor.stages.stabilize import Stabilize

ANALYSIS_SIZE = 160   # short side (pixels) the measure and the cut test work at
TINT_BAND = 2.0       # L* width of the lightness bands whose mean colour is the tint
COLOUR_DELTA = 10.0   # distance in (a*, b*) from the band's tint that counts as colour
COLOUR_SHARE = 0.005  # share of such pixels from which a frame has colour
_PREFIX = "keep_color."  # of the state keys, beside the colorizer's stabilizer's


def small_rgb(frames: torch.Tensor) -> torch.Tensor:
    """``(T, 3, H, W)`` uint8 or float RGB on any device -> float32 ``(T, 3, h, w)`` in [0, 1] on the
    same device, short side at most ``ANALYSIS_SIZE`` (area average)."""
    h, w = frames.shape[-2:]
    scale = ANALYSIS_SIZE / min(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale))) if scale < 1 else (h, w)
    if frames.device.type == "cpu" and frames.dtype == torch.uint8:  # OpenCV's box filter on the 8-bit frames
        import cv2

        hwc = frames.permute(0, 2, 3, 1).contiguous().numpy()
        small = np.stack([cv2.resize(f, (size[1], size[0]), interpolation=cv2.INTER_AREA) for f in hwc])
        return torch.from_numpy(small).permute(0, 3, 1, 2).float().div_(255).contiguous()
    x = frames.float() / 255 if frames.dtype == torch.uint8 else frames.float()
    return x.contiguous() if scale >= 1 else F.interpolate(x, size=size, mode="area")


def colour_stats(small: torch.Tensor) -> list[tuple[float, float]]:
    """``(chroma, share)`` of each frame of ``small`` (``small_rgb``'s output); see the module doc."""
    lab = rgb_to_lab(small.float()).flatten(2).cpu().numpy()  # (T, 3, h * w)
    bands = int(100 / TINT_BAND) + 1
    out = []
    for L, a, b in lab:
        band = np.clip((L / TINT_BAND).astype(np.int64), 0, bands - 1)
        n = np.maximum(np.bincount(band, minlength=bands), 1)
        tint_a = np.bincount(band, a, bands) / n
        tint_b = np.bincount(band, b, bands) / n
        away = np.hypot(a - tint_a[band], b - tint_b[band]) > COLOUR_DELTA
        out.append((float(np.hypot(a, b).mean()), float(away.mean())))
    return out


def has_colour(share: float) -> bool:
    return share >= COLOUR_SHARE


def colour_warning(frames: np.ndarray | torch.Tensor) -> str | None:
    """The warning for an input with colour, from decoded RGB frames sampled across it (``(N, H, W, 3)``
    uint8 numpy, as decoders give them, or ``(N, 3, H, W)`` tensors); None when they have none."""
    if len(frames) == 0:
        return None
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2) if isinstance(frames, np.ndarray) else frames
    stats = colour_stats(small_rgb(x))
    chroma = float(np.mean([c for c, _ in stats]))
    share = float(np.mean([s for _, s in stats]))
    if not has_colour(share):
        return None
    return (f"the input has colour (mean chroma C*ab {chroma:.1f} over {len(stats)} sampled frames, "
            f"{share:.1%} of their pixels beyond a black-and-white tint): colorizing replaces it; "
            "--keep-color keeps the colour of shots that have it")


class ShotColour:
    """Per-shot "has colour" for ``--keep-color`` (module doc). Call :meth:`keep` with the frames of
    a video in order; its state (the cut test's previous frame, the current shot's answer) goes
    through ``state_dict`` so a resumed run continues the shot it stopped in."""

    def __init__(self, flow: str = "auto", scene_cut: float = 0.35, photo_tol: float = 0.05,
                 device: str | torch.device | None = None) -> None:
        # the stabilizer's core, run on the small luma itself: only its cut decisions are used
        self.cuts = Stabilize(strength=1.0, flow=flow, mode="rgb", scene_cut=scene_cut, flow_size=ANALYSIS_SIZE,
                              photo_tol=photo_tol, device=device, threads=0)
        self.colour = False
        self.shots: list[tuple[int, bool]] = []  # (first frame, has colour) of each shot seen

    def keep(self, frames: torch.Tensor, index: int) -> list[bool]:
        """For frames ``index ... index + T - 1`` (``(T, 3, H, W)`` RGB), whether each is in a shot
        whose input has colour."""
        small = small_rgb(frames)
        luma = rgb_to_luma(small).clamp_(0, 1)
        continued, _ = self.cuts.blend_values(luma, luma.clone(), index)
        out = []
        for k, same_shot in enumerate(continued):
            if not same_shot:  # the first frame of the video, of a seek or of a shot
                self.colour = has_colour(colour_stats(small[k:k + 1])[0][1])
                self.shots.append((index + k, self.colour))
            out.append(self.colour)
        return out

    def reset(self) -> None:
        self.cuts.reset()
        self.colour = False
        self.shots = []

    def state_dict(self) -> dict[str, Any]:
        state = {_PREFIX + k: v for k, v in self.cuts.state_dict().items()}
        state[_PREFIX + "colour"] = torch.tensor(int(self.colour), dtype=torch.int64)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from ``state`` (the keys ``state_dict`` made; others are ignored: they are the
        colorizer's own)."""
        mine = {k[len(_PREFIX):]: v for k, v in state.items() if k.startswith(_PREFIX)}
        colour = mine.pop("colour", None)
        self.cuts.load_state_dict(mine)
        self.colour = bool(int(colour)) if colour is not None else False
        self.shots = []

    @staticmethod
    def split(state: dict[str, Any]) -> dict[str, Any]:
        """``state`` without the keys ``state_dict`` made: the colorizer's own part."""
        return {k: v for k, v in state.items() if not k.startswith(_PREFIX)}
