"""``VideoReader``: decode a video in its own thread, yield upright RGB frames in chunks.

PyAV releases the GIL while decoding and converting, so the decoder thread overlaps with the
model on the main thread; a bounded queue gives back-pressure, so memory stays flat however long
the film is. Decoder failures become ``VideoError`` naming the file and the frame position.
"""

from __future__ import annotations

import bisect
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from vidcolor.errors import VideoError
from vidcolor.io.grey import luma_from_frame
from vidcolor.io.probe import VideoMeta, open_input, probe

# A decode this many frames short of the container's frame count or end time means the file was cut short.
TRUNCATION_TOLERANCE = 2
# Decoders whose frame threads drop decode errors (FFmpeg's vp8.c, shared by VP7): a damaged frame
# comes out as a picture, or not at all, and no error is returned. Slice threads report them.
FRAME_THREADS_HIDE_ERRORS = {"vp7", "vp8"}


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


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc)


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

    A file that decodes short of what its container states (frame count, or end time), or a frame
    that fails to decode, raises ``VideoError``. With ``allow_truncated`` the reader yields what
    decodes instead, skips the packets that do not, and says so in ``warnings``.
    """

    def __init__(self, path: str | Path, *, meta: VideoMeta | None = None, start_frame: int = 0,
                 queue_size: int = 16, threads: int = 0, grey: bool = False, allow_truncated: bool = False) -> None:
        self.path = Path(path)
        self.meta = meta or probe(self.path)
        self.start_frame = int(start_frame)
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._threads = threads
        self.grey = bool(grey)
        self.allow_truncated = bool(allow_truncated)
        self.frames_decoded = 0
        self.warnings: list[str] = []  # filled by the decoder thread before it ends the stream
        self._at = (0, 0.0)  # (frame, seconds) of the last decoded frame, for messages

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> VideoReader:
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
        if isinstance(item, BaseException):
            # no traceback or chained error: they hold this thread's frames, and with them the
            # decoder, which FFmpeg must then free wherever the garbage collector runs
            item.__context__ = item.__cause__ = item.__traceback__ = None
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _decode(self) -> None:
        index = 0
        last_pts: int | None = None
        try:
            container = open_input(self.path)
        except VideoError as exc:
            self._put(exc)
            return
        try:
            stream = container.streams.video[0]
            # frame + slice threads inside FFmpeg's decoder, slice threads alone where frame threads hide errors
            stream.thread_type = "SLICE" if stream.codec_context.name in FRAME_THREADS_HIDE_ERRORS else "AUTO"
            if self._threads:
                stream.codec_context.thread_count = self._threads
            tb = stream.time_base
            step = max(1, round(1 / (float(self.meta.frame_rate) * float(tb)))) if tb else 1
            all_pts = self._seek(container, stream) if self.start_frame > 0 else None
            video_end: float | None = None  # seconds: end of the last decoded frame
            data_end: float | None = None  # seconds: end of the last packet of any stream
            damaged: list[tuple[int, float, str]] = []  # (frame, seconds, reason) of packets that did not decode
            for packet in self._packets(container, damaged):
                if packet is not None and packet.pts is not None and packet.time_base:
                    end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                    data_end = end if data_end is None else max(data_end, end)
                if packet is not None and packet.stream.index != stream.index:
                    continue
                try:
                    frames = stream.decode(packet)
                except av.error.FFmpegError as exc:
                    if not self.allow_truncated:
                        raise
                    damaged.append((*self._at, _reason(exc)))
                    continue
                for frame in frames:
                    if self._stop.is_set():
                        return
                    pts = frame.pts if frame.pts is not None else frame.dts
                    if pts is None:  # raw streams without timestamps: synthesise a constant rate
                        pts = (last_pts + step) if last_pts is not None else 0
                    last_pts = pts
                    self._at = (index, self._seconds(pts))
                    if tb:
                        end = float((pts + (frame.duration or step)) * tb)
                        video_end = end if video_end is None else max(video_end, end)
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
            if index == 0:
                raise VideoError(f"{self.path}: no video frame could be decoded")
            short = self._shortfall(index, video_end, data_end)
            if short and not self.allow_truncated:
                raise VideoError(f"{self.path}: truncated or corrupt: {short} (--allow-truncated encodes what decodes)")
            if short:
                self.warnings.append(f"{self.path}: truncated or corrupt: {short}; encoded what decodes")
            if damaged:
                frame_no, seconds, reason = damaged[0]
                self.warnings.append(f"{self.path}: {len(damaged)} damaged packet(s) skipped, the first at frame "
                                     f"{frame_no} (~{seconds:.2f} s): {reason}")
            self._put(_END)
        except VideoError as exc:
            self._put(exc)
        except av.error.FFmpegError as exc:
            self._put(VideoError(f"{self.path}: corrupt data at frame {index} (~{self._seconds(last_pts):.2f} s): "
                                 f"{_reason(exc)} (--allow-truncated skips what does not decode)"))
        except Exception as exc:  # noqa: BLE001  (never leave the consumer waiting)
            self._put(VideoError(f"{self.path}: decoding failed at frame {index}: {exc}"))
        finally:
            container.close()

    def _packets(self, container: av.container.InputContainer,
                 damaged: list[tuple[int, float, str]]) -> Iterator[av.Packet | None]:
        """Every stream's packets, ending with one that flushes the video decoder (None after a read
        error). A read error ends the file there when ``allow_truncated`` (noted in ``damaged``), else
        it is raised."""
        video = container.streams.video[0]
        try:
            for packet in container.demux():
                # demux ends with an empty packet per stream (their stream_index is 0): keep the video's
                if packet.size or packet.stream.index == video.index:
                    yield packet
            return
        except av.error.FFmpegError as exc:
            if not self.allow_truncated:
                raise
            damaged.append((*self._at, f"unreadable from there on ({_reason(exc)})"))
        yield None

    def _seconds(self, pts: int | None) -> float:
        """A pts as seconds from the start of the video (0 before the first frame)."""
        return (pts - self.meta.start_pts) * float(self.meta.time_base) if pts is not None else 0.0

    def _shortfall(self, decoded: int, video_end: float | None, data_end: float | None) -> str | None:
        """How much of what the container states did not decode ("decoded 1 of 47 frames (0.03 of
        1.57 s)"), or None when the decode reached the end. ``decoded`` counts frames from the first
        of the file; ``video_end``/``data_end`` are where the video frames and any stream's packets ended."""
        m = self.meta
        rate = float(m.frame_rate)
        start = m.start_pts * float(m.time_base)
        if m.frame_count_exact and m.frame_count:
            if decoded >= m.frame_count - TRUNCATION_TOLERANCE:
                return None
            expected_s = m.duration if m.duration else m.frame_count / rate
            got_s = (video_end - start) if video_end is not None else decoded / rate
            return f"decoded {decoded} of {m.frame_count} frames ({got_s:.2f} of {expected_s:.2f} s)"
        if m.end_time is None or video_end is None:
            return None
        # The container's own end may be another stream's (audio longer than the picture): any stream reaching it counts.
        reached = video_end if m.end_time_of_video else max(video_end, data_end or video_end)
        if reached >= m.end_time - TRUNCATION_TOLERANCE / rate - 0.002:  # Matroska rounds times to 1 ms
            return None
        expected = max(decoded, round((m.end_time - start) * rate))
        return (f"decoded {decoded} of ~{expected} frames ({video_end - start:.2f} of {m.end_time - start:.2f} s)")

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
