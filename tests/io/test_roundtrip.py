"""Encode with both backends, read back: frame count, pts, audio packets, subtitles, sizes, colour."""

import os
import re
from fractions import Fraction

import av
import numpy as np
import pytest

from tests.conftest import add_subtitles, decode_all, make_clip, packets, video_pts
from vidcolor.errors import VideoError
from vidcolor.io.ffmpeg_writer import FFmpegWriter
from vidcolor.io.probe import probe
from vidcolor.io.reader import VideoReader
from vidcolor.io.writer import VideoWriter

WRITERS = {"pyav": VideoWriter, "ffmpeg": FFmpegWriter}


def copy_video(src, dst, backend="pyav", chunk=5, **kwargs):
    meta = probe(src)
    with VideoReader(src, meta=meta) as r, WRITERS[backend](dst, meta, streams_from=src, **kwargs) as w:
        for c in r.chunks(chunk):
            w.write(c.frames, c.pts)
    return w


@pytest.mark.parametrize("backend", WRITERS)
def test_roundtrip_keeps_count_pts_audio(tmp_path, backend):
    src = make_clip(tmp_path / "in.mp4", frames=30, rate=30)
    out = tmp_path / "out.mp4"
    w = copy_video(src, out, backend, tags={"version": "t", "style": "test"})
    assert out.exists() and not (tmp_path / "out.mp4.part").exists()
    assert w.frames_written == 30
    assert video_pts(out) == video_pts(src)
    assert packets(out, "audio") == packets(src, "audio")  # stream copy: byte-identical
    m = probe(out)
    assert m.frame_count == 30 and m.tags.get("vidcolor_style") == "test"
    assert abs(m.duration - probe(src).duration) <= 1 / 30
    # pixels survive the trip (crf 18, smooth content)
    assert np.abs(decode_all(out).astype(int) - decode_all(src).astype(int)).mean() < 3


@pytest.mark.parametrize("backend", WRITERS)
def test_variable_frame_rate_keeps_timestamps(tmp_path, backend):
    pts = [0, 33, 66, 150, 183, 300, 333, 366, 500, 533, 700, 733]
    src = make_clip(tmp_path / "vfr.mkv", frames=len(pts), pts=pts, time_base=Fraction(1, 1000), audio=False)
    for ext in (".mkv", ".mp4"):
        out = tmp_path / f"out_{backend}{ext}"
        copy_video(src, out, backend)
        got, tb = video_pts(out)
        assert [Fraction(p) * tb for p in got] == [Fraction(p, 1000) for p in pts], ext


@pytest.mark.parametrize("backend", WRITERS)
@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_subtitles_survive(tmp_path, backend, ext):
    base = make_clip(tmp_path / f"base{ext}", frames=24)
    src = add_subtitles(base, tmp_path / f"subs{ext}")
    out = tmp_path / f"out{ext}"
    copy_video(src, out, backend)
    assert packets(out, "subtitle") == packets(src, "subtitle")
    assert packets(out, "audio") == packets(src, "audio")


@pytest.mark.parametrize("backend", WRITERS)
def test_odd_size_keeps_size(tmp_path, backend):
    src = make_clip(tmp_path / "odd.mkv", width=321, height=241, frames=6, codec="ffv1", pix_fmt="yuv420p", audio=False)
    out = tmp_path / "odd_out.mp4"
    w = copy_video(src, out, backend)
    m = probe(out)
    assert (m.width, m.height) == (321, 241)
    assert any("odd frame size" in x for x in w.warnings)
    assert decode_all(out).shape == (6, 241, 321, 3)


@pytest.mark.parametrize("codec,ext", [("libx265", ".mp4"), ("prores_ks", ".mov"), ("ffv1", ".mkv")])
def test_codecs(tmp_path, codec, ext):
    src = make_clip(tmp_path / "in.mp4", frames=8)
    out = tmp_path / f"out{ext}"
    copy_video(src, out, codec=codec, crf=28 if codec == "libx265" else None)
    m = probe(out)
    assert m.frame_count == 8 or len(decode_all(out)) == 8
    assert m.codec == {"libx265": "hevc", "prores_ks": "prores", "ffv1": "ffv1"}[codec]


def test_encoder_option_passthrough(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=8, audio=False)
    out = tmp_path / "out.mp4"
    copy_video(src, out, options={"x264-params": "keyint=2:min-keyint=2:scenecut=0"})
    with av.open(str(out)) as c:
        keys = [p.is_keyframe for p in c.demux(c.streams.video[0]) if p.size]
    assert sum(keys) == 4  # a keyframe every 2 frames, as asked


def test_x264_uses_frame_threads(tmp_path):
    """PyAV opens encoders with slice threads; the writer asks for frame threads like the ffmpeg CLI
    (x264 records its settings in the stream)."""
    src = make_clip(tmp_path / "in.mp4", frames=8, audio=False)
    out = tmp_path / "out.mp4"
    copy_video(src, out)
    found = re.search(rb" threads=(\d+) lookahead_threads=\d+ sliced_threads=(\d)", out.read_bytes())
    assert found, "x264 settings not in the stream"
    threads, sliced = int(found[1]), int(found[2])
    assert sliced == 0
    assert threads > 1 or (os.cpu_count() or 1) == 1  # slice threads on a small frame fall back to 1
    copy_video(src, out, options={"threads": "1"})  # -e threads=1 still wins
    assert b" threads=1 " in out.read_bytes()


def test_audio_transcoded_when_container_cannot_hold_it(tmp_path):
    src = make_clip(tmp_path / "in.mkv", frames=12, audio_codec="libopus")
    out = tmp_path / "out.avi"
    w = copy_video(src, out, codec="libx264")
    assert any("re-encoded" in x for x in w.warnings)
    assert packets(out, "audio")


def ffmpeg_upright_first_frame(path):
    """Reference: the ffmpeg tool applies the display matrix by default (autorotate)."""
    import subprocess

    from tests.conftest import ffmpeg_exe

    m = probe(path)
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-frames:v", "1", "-f", "rawvideo",
                          "-pix_fmt", "rgb24", "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(m.display_height, m.display_width, 3)


@pytest.mark.parametrize("name", ["decord_video_0.mov", "decord_video_90.mov", "decord_video_180.mov",
                                  "decord_video_270.mov"])
def test_rotated_files_come_out_upright(shared_data, tmp_path, name):
    src = shared_data / "videos/edge_cases" / name
    want = ffmpeg_upright_first_frame(src)
    got = decode_all(src)
    assert got.shape[1:] == want.shape
    assert np.abs(got[0].astype(int) - want.astype(int)).mean() < 3
    out = tmp_path / name.replace(".mov", "_out.mp4")
    copy_video(src, out)
    m = probe(out)
    assert m.rotation == 0 and (m.height, m.width) == want.shape[:2]
    assert np.abs(decode_all(out)[0].astype(int) - want.astype(int)).mean() < 4


def test_error_mid_stream_leaves_nothing(tmp_path, shared_data):
    src = shared_data / "videos/edge_cases/decord_corrupted.mp4"
    out = tmp_path / "out.mp4"
    with pytest.raises(VideoError, match="corrupt data at frame"):
        copy_video(src, out)
    assert list(tmp_path.iterdir()) == []


def test_reader_chunks_and_start_frame(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=20, audio=False)
    all_frames = decode_all(src)
    with VideoReader(src, start_frame=7) as r:
        chunks = list(r.chunks(6))
    assert [c.index for c in chunks] == [7, 13, 19] and [len(c) for c in chunks] == [6, 6, 1]
    assert np.array_equal(np.concatenate([c.frames for c in chunks]), all_frames[7:])


@pytest.mark.parametrize("ext,pts", [(".mp4", None), (".mkv", [0, 40, 90, 120, 200, 240, 260, 330, 400, 420, 500, 560,
                                                                 600, 650, 700, 720, 800, 840, 900, 950])])
def test_reader_seeks_to_start_frame(tmp_path, ext, pts):
    """start_frame seeks to a keyframe and then counts frames by pts: same frames, same indices
    as decoding from the start (keyframe every 4 frames so the seek really skips)."""
    import av as _av

    src = tmp_path / f"in{ext}"
    c = _av.open(str(src), "w")
    v = c.add_stream("libx264", rate=24, options={"x264-params": "keyint=4:min-keyint=4:scenecut=0"})
    v.width, v.height, v.pix_fmt = 96, 64, "yuv420p"
    tb = Fraction(1, 1000) if pts else Fraction(1, 24)
    v.time_base = tb
    from tests.conftest import natural_frames

    for i, img in enumerate(natural_frames(20, 64, 96)):
        f = _av.VideoFrame.from_ndarray(img, format="rgb24")
        f.pts, f.time_base = (pts[i] if pts else i), tb
        for p in v.encode(f):
            c.mux(p)
    for p in v.encode():
        c.mux(p)
    c.close()
    with VideoReader(src) as r:
        full = list(r.frames())
    for start in (1, 9, 13, 19):
        with VideoReader(src, start_frame=start) as r:
            got = list(r.frames())
        assert [(i, p) for i, p, _ in got] == [(i, p) for i, p, _ in full[start:]]
        assert all(np.array_equal(a[2], b[2]) for a, b in zip(got, full[start:]))


def test_a_failed_run_stops_the_encoder_thread(tmp_path):
    """A run that fails while the writer's queue is full leaves no encoder thread behind (batch workers
    run file after file in one process) and no .part file."""
    src = make_clip(tmp_path / "in.mp4", frames=4, width=640, height=360, audio=False)
    meta = probe(src)
    frames = np.random.default_rng(0).integers(0, 256, (8, 360, 640, 3), dtype=np.uint8)  # slow to encode
    out = tmp_path / "out.mp4"
    writer = VideoWriter(out, meta, queue_size=1)
    with pytest.raises(RuntimeError, match="stage failed"):
        with writer:
            for k in range(3):  # the encoder is busy with the first chunk: the queue is full
                writer.write(frames, list(range(8 * k, 8 * k + 8)))
            assert writer._queue.full()
            raise RuntimeError("stage failed")
    assert writer._thread is None or not writer._thread.is_alive()
    assert not out.exists() and not (tmp_path / "out.mp4.part").exists()
