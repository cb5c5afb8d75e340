"""The contact sheet ``vidcolor keyframes`` writes beside the keyframe images: every frame it wrote
as a thumbnail labelled with its frame number and timecode, in rows of ``COLUMNS``."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import numpy as np

from vidcolor.io.probe import VideoMeta

# Thumbnails per row, thumbnail width, label band height, gap, thumbnails per sheet file (a JPEG is
# at most 65535 pixels high: 240 thumbnails of a 4:3 film make about 7,000).
COLUMNS, THUMB_WIDTH, LABEL_HEIGHT, GAP, PAGE = 6, 240, 22, 4, 240
PREFIX = "contact-sheet"


class ContactSheet:
    """Collects labelled thumbnails and hands each full page to ``save(name, grey image)``:
    ``contact-sheet.jpg``, then ``contact-sheet-2.jpg``, ... past ``PAGE`` thumbnails."""

    def __init__(self, meta: VideoMeta, save: Callable[[str, np.ndarray], None]) -> None:
        sar = meta.sample_aspect_ratio or Fraction(1)
        aspect = float(meta.display_width * sar) / max(meta.display_height, 1)
        self.size = (THUMB_WIDTH, max(8, round(THUMB_WIDTH / max(aspect, 1e-3))))
        self.save = save
        self.thumbs: list[np.ndarray] = []
        self.pages = 0

    def add(self, grey: np.ndarray, label: str) -> None:
        """One thumbnail of an ``(H, W)`` uint8 frame with ``label`` (ASCII) under it."""
        import cv2

        w, h = self.size
        tile = np.full((h + LABEL_HEIGHT, w), 255, np.uint8)
        tile[:h] = cv2.resize(grey, (w, h), interpolation=cv2.INTER_AREA)
        cv2.putText(tile, label, (4, h + LABEL_HEIGHT - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45, 0, 1, cv2.LINE_AA)
        self.thumbs.append(tile)
        if len(self.thumbs) == PAGE:
            self.flush()

    def flush(self) -> None:
        """Save the thumbnails collected since the last page (nothing when there are none)."""
        if not self.thumbs:
            return
        rows = -(-len(self.thumbs) // COLUMNS)
        th, tw = self.thumbs[0].shape
        sheet = np.full((rows * (th + GAP) + GAP, COLUMNS * (tw + GAP) + GAP), 64, np.uint8)
        for i, tile in enumerate(self.thumbs):
            y, x = GAP + (i // COLUMNS) * (th + GAP), GAP + (i % COLUMNS) * (tw + GAP)
            sheet[y:y + th, x:x + tw] = tile
        self.pages += 1
        self.save(f"{PREFIX}.jpg" if self.pages == 1 else f"{PREFIX}-{self.pages}.jpg", sheet)
        self.thumbs = []
