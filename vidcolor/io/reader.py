"""``VideoReader``: decode a video in its own thread, yield upright RGB frames in chunks.

PyAV releases the GIL while decoding and converting, so the decoder thread overlaps with the
model on the main thread; a bounded queue gives back-pressure, so memory stays flat however long
the film is. Decoder failures become ``VideoError`` naming the file and the frame position.
"""

from __future__ import annotations

import bisect
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from vidcolor.errors import VideoError
from vidcolor.io.grey import luma_from_frame
from vidcolor.io.probe import VideoMeta, open_input, probe

# A decoded count this far below the container's frame count means the file was cut short.
TRUNCATION_TOLERANCE = 2


@dataclass
class FrameChunk:
    """``frames``: (T, H, W, 3) uint8 RGB (or (T, H, W, 1) luma for a ``grey`` reader), upright;
    ``index``: number of the first frame; ``pts``: one per frame."""

    frames: np.ndarray
    index: int
    pts: list[int]

    def __len__(self) -> int:
        return len(self.pts)


_END = object()


def upright(rgb: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a display rotation (degrees counter-clockwise, multiple of 90) to an (H, W, C) image."""
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k)) if k else rgb


class VideoReader:
    """Iterate a video's frames as RGB uint8, upright, with their original pts.

    >>> with VideoReader("clip.mp4") as reader:
    ...     for chunk in reader.chunks(8):
    ...         chunk.frames.shape  # (8, H, W, 3)

    ``start_frame`` skips frames before that index (seeking to the nearest keyframe first), for
    resumable runs. ``queue_size`` bounds decoded frames held in memory. ``grey``: yield the
    coded luma as (H, W, 1) full-range uint8 instead of RGB (``vidcolor.io.grey``; no RGB
    conversion, for monochrome styles).
    """

    def __init__(self, path: str | Path, *, meta: VideoMeta | None = None, start_frame: int = 0,
                 queue_size: int = 16, threads: int = 0, grey: bool = False) -> None:
        self.path = Path(path)
        self.meta = meta or probe(self.path)
        self.start_frame = int(start_frame)
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._threads = threads
        self.grey = bool(grey)
        self.frames_decoded = 0

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            while self._thread.is_alive():
                try:  # unblock a producer waiting on a full queue
                    self._queue.get_nowait()
                except queue.Empty:
                    self._thread.join(timeout=0.05)
            self._thread = None

    # -- decoding --------------------------------------------------------------------------
    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _decode(self) -> None:
        index = 0
        try:
            container = open_input(self.path)
        except VideoError as exc:
            self._put(exc)
            return
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # frame + slice threads inside FFmpeg's decoder
            if self._threads:
                stream.codec_context.thread_count = self._threads
            tb = stream.time_base
            step = max(1, round(1 / (float(self.meta.frame_rate) * float(tb)))) if tb else 1
            last_pts: int | None = None
            all_pts = self._seek(container, stream) if self.start_frame > 0 else None
            for frame in container.decode(stream):
                if self._stop.is_set():
                    return
                pts = frame.pts if frame.pts is not None else frame.dts
                if pts is None:  # raw streams without timestamps: synthesise a constant rate
                    pts = (last_pts + step) if last_pts is not None else 0
                last_pts = pts
                if all_pts is not None:  # after a seek the index comes from the frame's pts
                    index = bisect.bisect_left(all_pts, pts)
                if index >= self.start_frame:
                    if self.grey:
                        rgb = upright(luma_from_frame(frame)[..., None], self.meta.rotation)
                    else:
                        rgb = upright(frame.to_ndarray(format="rgb24", src_color_range=frame.color_range or None),
                                      self.meta.rotation)
                    if not self._put((index, int(pts), rgb)):
                        return
                index += 1
            expected = self.meta.frame_count if self.meta.frame_count_exact else None
            if expected is not None and index < expected - TRUNCATION_TOLERANCE:
                raise VideoError(f"{self.path}: truncated or corrupt: decoded {index} of {expected} frames")
            if index == 0:
                raise VideoError(f"{self.path}: no video frame could be decoded")
            self._put(_END)
        except VideoError as exc:
            self._put(exc)
        except av.error.FFmpegError as exc:
            seconds = (last_pts - self.meta.start_pts) * float(self.meta.time_base) if last_pts is not None else 0.0
            reason = getattr(exc, "strerror", None) or str(exc)
            self._put(VideoError(f"{self.path}: corrupt data at frame {index} (~{seconds:.2f} s): {reason}"))
        except Exception as exc:  # never leave the consumer waiting
            self._put(VideoError(f"{self.path}: decoding failed at frame {index}: {exc}"))
        finally:
            container.close()

    def _seek(self, container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> list[int] | None:
        """Seek to the keyframe at or before ``start_frame``; return every frame's pts in order, so a
        decoded frame's index is its position in that list (exact for variable frame rate too).

        Reading packet headers is cheap next to decoding the frames before the start (resuming a
        two-hour film decodes a few frames instead of the whole first part). Returns None, after
        rewinding, when the file's timestamps cannot index its frames (then every frame is decoded)."""
        try:
            all_pts = sorted(p.pts for p in container.demux(stream) if p.pts is not None and p.size)
            if len(all_pts) <= self.start_frame or len(set(all_pts)) != len(all_pts):
                container.seek(0)
                return None
            container.seek(all_pts[self.start_frame], stream=stream, backward=True, any_frame=False)
            return all_pts
        except av.error.FFmpegError:
            container.seek(0)
            return None

    def _start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._decode, name=f"decode:{self.path.name}", daemon=True)
            self._thread.start()

    def frames(self) -> Iterator[tuple[int, int, np.ndarray]]:
        """Yield ``(index, pts, rgb (H, W, 3) uint8)`` one frame at a time."""
        self._start()
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            self.frames_decoded += 1
            yield item

    def chunks(self, size: int) -> Iterator[FrameChunk]:
        """Yield ``FrameChunk``s of up to ``size`` consecutive frames (the last one may be shorter)."""
        if size < 1:
            raise ValueError(f"chunk size must be >= 1, got {size}")
        buf: list[np.ndarray] = []
        pts: list[int] = []
        first = self.start_frame
        for index, p, rgb in self.frames():
            if not buf:
                first = index
            buf.append(rgb)
            pts.append(p)
            if len(buf) == size:
                yield FrameChunk(np.stack(buf), first, pts)
                buf, pts = [], []
        if buf:
            yield FrameChunk(np.stack(buf), first, pts)

    def __iter__(self) -> Iterator[tuple[int, int, np.ndarray]]:
        return self.frames()
