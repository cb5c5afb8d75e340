"""Decoding training media: images with OpenCV, video frames with decord (a few readers kept
open per process) or PyAV as the fallback, and the short-side resize used for training."""

from __future__ import annotations

from collections import OrderedDict

import cv2
import numpy as np


def read_image(path: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB; grey and 16-bit images are converted, alpha dropped."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("OpenCV cannot decode it")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


_READERS: OrderedDict[str, object] = OrderedDict()  # per process: a few open decord readers


def close_readers() -> None:
    """Forget the open decord readers (a DataLoader worker must not use its parent's)."""
    _READERS.clear()


def forget_reader(path: str) -> None:
    """Close the decord reader of ``path`` if one is open (after a failure, or a file read once)."""
    _READERS.pop(path, None)


def _decord_reader(path: str):
    import decord

    vr = _READERS.pop(path, None)
    if vr is None:
        decord.logging.set_level(decord.logging.QUIET)
        vr = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
    _READERS[path] = vr
    while len(_READERS) > 4:
        _READERS.popitem(last=False)
    return vr


def video_info(path: str, backend: str) -> tuple[int, tuple[int, int]]:
    if backend == "decord":
        vr = _decord_reader(path)
        h, w = vr[0].shape[:2] if len(vr) else (0, 0)
        return len(vr), (h, w)
    import av

    with av.open(path) as c:
        s = c.streams.video[0]
        n = s.frames
        if not n and s.duration and s.average_rate:
            n = round(float(s.duration * s.time_base * s.average_rate))
        if not n and c.duration:
            n = int(c.duration / 1e6 * float(s.average_rate or 25))
        return int(n or 0), (s.codec_context.height, s.codec_context.width)


def decode_frames(path: str, backend: str, indices: list[int]) -> list[np.ndarray]:
    """Frames ``indices`` (sorted) as (H, W, 3) uint8 RGB."""
    if backend == "decord":
        return list(_decord_reader(path).get_batch(indices).asnumpy())
    return _decode_pyav(path, indices)


def _decode_pyav(path: str, indices: list[int]) -> list[np.ndarray]:
    """PyAV fallback: seek to the keyframe before the first wanted frame, decode forward, and
    number frames from their pts (frame index = round(time * average rate))."""
    import av

    want = sorted(set(indices))
    got: dict[int, np.ndarray] = {}
    with av.open(path) as c:
        s = c.streams.video[0]
        rate = float(s.average_rate or 25)
        start = s.start_time or 0
        c.seek(start + int(want[0] / rate / s.time_base), stream=s, backward=True, any_frame=False)
        last = None
        for frame in c.decode(s):
            idx = round(float((frame.pts - start) * s.time_base) * rate) if frame.pts is not None else 0
            last = frame
            if idx in want:
                got[idx] = frame.to_ndarray(format="rgb24")
            if idx >= want[-1]:
                break
        for i in want:  # past the end of a stream whose count was estimated: repeat the last frame
            if i not in got and last is not None:
                got[i] = last.to_ndarray(format="rgb24")
    if len(got) < len(want):
        raise ValueError(f"cannot decode frames {want[0]}..{want[-1]}")
    return [got[i] for i in indices]


def resize_short(img: np.ndarray, short: int) -> np.ndarray:
    """Resize (H, W, 3) so min(H, W) == short (area filter when shrinking, as the inference path)."""
    h, w = img.shape[:2]
    scale = short / min(h, w)
    size = (max(short, round(w * scale)), max(short, round(h * scale)))
    if size == (w, h):
        return img
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)




def decode_window(path: str, backend: str, max_frames: int, load_size: int) -> np.ndarray:
    """Decode the whole video, or its middle ``max_frames`` frames, sequentially (fast: no seek per
    sample), each resized to short side ``load_size``: ``(T, H, W, 3)`` uint8."""
    out = []
    if backend == "decord":
        vr = _decord_reader(path)
        n = len(vr)
        start = (n - max_frames) // 2 if max_frames and n > max_frames else 0
        stop = start + min(n, max_frames or n)
        for i in range(start, stop, 16):
            for f in vr.get_batch(list(range(i, min(i + 16, stop)))).asnumpy():
                out.append(resize_short(f, load_size))
        forget_reader(path)
    else:
        import av

        n, _ = video_info(path, "pyav")
        start = (n - max_frames) // 2 if max_frames and n > max_frames else 0
        with av.open(path) as c:
            s = c.streams.video[0]
            s.thread_type = "AUTO"
            if start:  # seek to the keyframe before the window, then decode forward
                rate = float(s.average_rate or 25)
                c.seek((s.start_time or 0) + int(start / rate / s.time_base), stream=s, backward=True)
            for frame in c.decode(s):
                idx = round(float((frame.pts - (s.start_time or 0)) * s.time_base) * float(s.average_rate or 25)) \
                    if frame.pts is not None else len(out)
                if idx < start:
                    continue
                out.append(resize_short(frame.to_ndarray(format="rgb24"), load_size))
                if max_frames and len(out) >= max_frames:
                    break
    if not out:
        raise ValueError("no frames decoded")
    return np.stack(out)
