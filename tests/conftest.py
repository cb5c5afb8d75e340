"""Shared fixtures: the real footage in ../shared/data, and clips made on the fly with PyAV."""

from __future__ import annotations

import os
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("VIDCOLOR_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    d = shared_data_dir()
    if not (d / "videos").is_dir():
        pytest.skip(f"shared data not found at {d} (set VIDCOLOR_SHARED_DATA to its folder)")
    return d


def natural_frames(n: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """(n, H, W, 3) uint8 frames with smooth colour gradients, a moving square and some texture:
    compresses like real footage, moves, and has colour in every channel."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xx / max(width - 1, 1), yy / max(height - 1, 1), 1 - xx / max(width - 1, 1)], -1)
    texture = rng.normal(0, 0.03, (height, width, 1)).astype(np.float32)
    out = np.empty((n, height, width, 3), np.uint8)
    side = max(4, min(height, width) // 4)
    for i in range(n):
        img = 0.25 + 0.5 * base + texture
        x0 = (i * 3) % max(1, width - side)
        y0 = (i * 2) % max(1, height - side)
        img[y0:y0 + side, x0:x0 + side] = (0.9, 0.2, 0.1)
        out[i] = (np.clip(img, 0, 1) * 255).astype(np.uint8)
    return out


def make_clip(path: Path, *, frames: int = 24, width: int = 160, height: int = 96, rate: int = 24,
              pts: list[int] | None = None, time_base: Fraction | None = None, audio: bool = True,
              codec: str = "libx264", pix_fmt: str = "yuv420p", audio_codec: str = "aac") -> Path:
    """Write a test clip with PyAV. ``pts`` (with ``time_base``) gives each frame's timestamp, for
    variable-frame-rate clips; the audio is a 440 Hz tone as long as the video."""
    fmt = {".mkv": "matroska", ".mp4": "mp4", ".mov": "mov", ".webm": "webm"}[path.suffix]
    c = av.open(str(path), "w", format=fmt)
    v = c.add_stream(codec, rate=rate)
    v.width, v.height, v.pix_fmt = width, height, pix_fmt
    tb = time_base or Fraction(1, rate)
    v.time_base = tb
    v.codec_context.time_base = tb
    a = None
    if audio:
        a = c.add_stream(audio_codec, rate=48000)
        a.layout = "stereo"
    imgs = natural_frames(frames, height, width)
    for i, img in enumerate(imgs):
        f = av.VideoFrame.from_ndarray(img, format="rgb24")
        f.pts = pts[i] if pts is not None else i
        f.time_base = tb
        for p in v.encode(f):
            c.mux(p)
    for p in v.encode():
        c.mux(p)
    if a is not None:
        seconds = frames / rate if pts is None else float((pts[-1] + 1) * tb)
        n = int(seconds * 48000)
        t = np.arange(n) / 48000
        tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        samples = np.stack([tone, tone])
        step = 1024
        for k in range(0, n, step):
            af = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, k:k + step]), format="fltp",
                                            layout="stereo")
            af.sample_rate = 48000
            af.pts = k
            for p in a.encode(af):
                c.mux(p)
        for p in a.encode():
            c.mux(p)
    c.close()
    return path


def make_audio_only(path: Path) -> Path:
    """A valid mp4/m4a with one AAC audio stream and no video."""
    c = av.open(str(path), "w", format="mp4")
    a = c.add_stream("aac", rate=48000)
    a.layout = "mono"
    f = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
    f.sample_rate, f.pts = 48000, 0
    for p in list(a.encode(f)) + list(a.encode()):
        c.mux(p)
    c.close()
    return path


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_clip(tmp_path / "clip.mp4")


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def add_subtitles(src: Path, dst: Path, text: str = "Hello from vidcolor") -> Path:
    """Mux an SRT subtitle track into a copy of ``src`` (mov_text in mp4/mov, srt in mkv)."""
    srt = dst.with_suffix(".srt")
    srt.write_text(f"1\n00:00:00,000 --> 00:00:00,800\n{text}\n\n2\n00:00:00,800 --> 00:00:01,000\nBye\n\n")
    scodec = "mov_text" if dst.suffix in (".mp4", ".mov") else "srt"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(src), "-i", str(srt),
                    "-map", "0", "-map", "1", "-c", "copy", "-c:s", scodec, str(dst)], check=True)
    return dst


def packets(path: Path, kind: str) -> list[tuple[int | None, bytes]]:
    """(pts, payload) of every packet of the first stream of ``kind`` (video/audio/subtitle)."""
    with av.open(str(path)) as c:
        s = [st for st in c.streams if st.type == kind][0]
        return [(p.pts, bytes(p)) for p in c.demux(s) if p.size]


def video_pts(path: Path) -> tuple[list[int], Fraction]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return sorted(p.pts for p in c.demux(s) if p.size and p.pts is not None), Fraction(s.time_base)


def decode_all(path: Path) -> np.ndarray:
    from vidcolor.io.reader import VideoReader

    with VideoReader(path) as r:
        return np.concatenate([c.frames for c in r.chunks(16)])


def encode_frames(path: Path, frames, rate: int = 24, codec: str = "ffv1", pix_fmt: str = "yuv444p") -> Path:
    """Write RGB frames ``(T, H, W, 3)`` uint8 as a video (default: lossless FFV1 4:4:4 in Matroska,
    so a test decodes what it wrote)."""
    c = av.open(str(path), "w")
    v = c.add_stream(codec, rate=rate)
    v.width, v.height, v.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
    for img in frames:
        for p in v.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
            c.mux(p)
    for p in v.encode():
        c.mux(p)
    c.close()
    return path
