"""A few decoded frames spread over a video, for a look at the whole input before a run."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from vidcolor.io.probe import VideoMeta, open_input
from vidcolor.io.reader import upright

SEQUENTIAL_FRAMES = 32  # per sample: a clip of up to count * this many frames is decoded through


def sample_frames(path: str | Path, meta: VideoMeta, count: int = 16) -> np.ndarray:
    """Up to ``count`` upright RGB frames ``(N, H, W, 3)`` uint8, evenly spread over the video.

    A short clip (up to ``count * SEQUENTIAL_FRAMES`` frames, or one of unknown length) is decoded
    through and every n-th frame kept; a longer one is sampled by ``count`` seeks, taking the first
    frame decoded after each (a keyframe near the evenly spaced time). Frames that do not decode
    are left out (the run itself reports damage)."""
    out: list[np.ndarray] = []
    n = meta.frame_count or 0
    with open_input(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            if not n or n <= count * SEQUENTIAL_FRAMES or not meta.duration or not stream.time_base:
                step = max(1, -(-n // count)) if n else SEQUENTIAL_FRAMES
                for i, frame in enumerate(container.decode(stream)):
                    if i % step == 0:
                        out.append(frame.to_ndarray(format="rgb24"))
                    if len(out) == count:
                        break
            else:
                start = stream.start_time or 0
                for k in range(count):
                    seconds = meta.duration * (k + 0.5) / count
                    container.seek(start + int(seconds / stream.time_base), stream=stream, backward=True)
                    frame = next(iter(container.decode(stream)), None)
                    if frame is not None:
                        out.append(frame.to_ndarray(format="rgb24"))
        except av.error.FFmpegError:
            pass
    if not out:
        return np.zeros((0, 1, 1, 3), np.uint8)
    shapes = {f.shape for f in out}
    if len(shapes) > 1:  # a size change inside the file: the most common size
        common = max(shapes, key=lambda s: sum(f.shape == s for f in out))
        out = [f for f in out if f.shape == common]
    return np.stack([upright(f, meta.rotation) for f in out])
