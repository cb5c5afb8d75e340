"""Damaged inputs are never encoded short in silence: a truncated file, a frame that fails to decode
(also under FFmpeg's frame threads) and a broken resume state each end in one line, and
``--allow-truncated`` encodes what decodes with a warning."""

from __future__ import annotations

import importlib.util
import json
import sys

import av
import pytest
import torch
from click.testing import CliRunner

from tests.conftest import REPO, make_clip
from tests.pipelines.helpers import write_style
from vidcolor.cli import main
from vidcolor.errors import VideoError
from vidcolor.io.reader import VideoReader


def invoke(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def error_lines(r) -> list[str]:
    return [ln for ln in r.stderr.splitlines() if ln.strip()]


def truncated_copy(src, dst, fraction: float = 0.4):
    data = src.read_bytes()
    dst.write_bytes(data[:int(len(data) * fraction)])
    return dst


@pytest.mark.parametrize("ext,codec,audio_codec", [("mkv", "libx264", "aac"), ("webm", "libvpx", "libopus")])
def test_truncated_matroska_fails_then_allow_truncated_encodes_what_decodes(tmp_path, ext, codec, audio_codec):
    src = make_clip(tmp_path / f"c.{ext}", frames=48, width=128, height=72, codec=codec, audio_codec=audio_codec)
    cut = truncated_copy(src, tmp_path / f"cut.{ext}")
    out = tmp_path / "o.mkv"
    r = invoke("run", cut, "-o", out, "--json")
    assert r.exit_code == 2, r.output
    [line] = error_lines(r)
    assert line.startswith("vidcolor: error: ") and "truncated or corrupt: decoded" in line and "of ~48 frames" in line
    assert "--allow-truncated" in line
    assert not out.exists() and not list(tmp_path.glob("*.part"))

    r = invoke("run", cut, "-o", out, "--json", "--allow-truncated")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert 0 < report["frames"] < 40
    assert any("truncated or corrupt" in w for w in report["warnings"])
    assert "vidcolor: warning:" in r.stderr


def test_reader_passes_whole_files_with_audio_longer_than_video(tmp_path):
    """The container's end is the audio's: a video stream that ends before it is not truncation."""
    src = make_clip(tmp_path / "c.webm", frames=24, codec="libvpx", audio_codec="libopus")
    with VideoReader(src) as r:
        assert sum(len(c) for c in r.chunks(8)) == 24
    assert r.warnings == []


def test_every_shared_video_reads_whole_and_the_corrupt_one_fails(shared_data):
    """The truncation check's tolerance against real files: all decode without a warning (rotated ones
    too), the known-corrupt mp4 fails naming the frame."""
    for path in sorted((shared_data / "videos").rglob("*.*")):
        if path.name == "decord_corrupted.mp4":
            with pytest.raises(VideoError, match=r"corrupt data at frame 2\d"), VideoReader(path, grey=True) as r:
                for _ in r.chunks(64):
                    pass
            continue
        with VideoReader(path, grey=True) as r:
            n = sum(len(c) for c in r.chunks(64))
        assert n >= 3 and r.warnings == [], path


def vp8_with_a_damaged_frame(tmp_path, frame: int = 5):
    """A VP8 webm whose frame ``frame`` carries bytes that a single-threaded decoder rejects and
    FFmpeg's frame-threaded decoder passes without an error."""
    src = make_clip(tmp_path / "vp8.webm", frames=24, width=128, height=72, codec="libvpx", audio=False)
    with av.open(str(src)) as c:
        payload = [bytes(p) for p in c.demux(c.streams.video[0]) if p.size][frame]
    data = bytearray(src.read_bytes())
    at = data.find(payload)
    data[at + 5:at + 9] = b"\xff" * 4  # past the 3-byte frame tag: the compressed header
    bad = tmp_path / "bad.webm"
    bad.write_bytes(bytes(data))
    return bad


def decode_count(path, thread_type):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = thread_type
        return sum(1 for _ in c.decode(s))


def test_vp8_decode_errors_are_not_swallowed_by_frame_threads(tmp_path):
    bad = vp8_with_a_damaged_frame(tmp_path)
    # what FFmpeg does: frame threads hide the error that a plain decoder reports
    assert decode_count(bad, "AUTO") == 24
    with pytest.raises(av.error.InvalidDataError):
        decode_count(bad, "SLICE")
    out = tmp_path / "o.mkv"
    r = invoke("run", bad, "-o", out, "--style", "noir")
    assert r.exit_code == 2, r.output
    [line] = [ln for ln in error_lines(r) if ln.startswith("vidcolor: error:")]
    assert "corrupt data at frame 5" in line
    assert not out.exists()

    r = invoke("run", bad, "-o", out, "--style", "noir", "--allow-truncated", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["frames"] < 24 and any("damaged packet" in w for w in report["warnings"])


def test_unreadable_resume_state_is_one_line_and_fresh_starts_over(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDCOLOR_SEGMENT_SECONDS", "0.5")
    src = make_clip(tmp_path / "c.mp4", frames=36, width=96, height=64, audio=False)
    out = tmp_path / "o.mp4"
    work = tmp_path / "o.mp4.vidcolor-work"
    style = write_style(tmp_path)  # a stabilizer: state that carries across segments
    # a resumable run that dies after its first segment: the work folder keeps segment 0 and its state
    from vidcolor.pipelines import segments

    real_add = segments.WorkFolder.add

    def add_then_die(self, seg):
        real_add(self, seg)
        raise KeyboardInterrupt

    monkeypatch.setattr(segments.WorkFolder, "add", add_then_die)
    r = invoke("run", src, "-o", out, "--style", style, "--resumable")
    assert r.exit_code == 130, r.output
    monkeypatch.setattr(segments.WorkFolder, "add", real_add)
    [state] = list(work.glob("*.state.pt"))
    state.write_bytes(b"PK\x03\x04 not a torch file")

    r = invoke("run", src, "-o", out, "--style", style, "--resumable")
    assert r.exit_code == 1, r.output
    [line] = error_lines(r)
    assert line.startswith(f"vidcolor: error: {state}: unreadable saved state") and "--fresh" in line
    assert "weights_only" not in line

    r = invoke("run", src, "-o", out, "--style", style, "--resumable", "--fresh", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["frames"] == 36 and not work.exists()


def test_state_files_are_loaded_as_tensors_only(tmp_path):
    """``weights_only=True``: a state file that would run code on load is refused, not executed."""
    from vidcolor.pipelines.segments import Segment, WorkFolder

    class Boom:
        def __reduce__(self):
            return (print, ("pwned",))

    folder = WorkFolder(tmp_path / "w", {"job": 1})
    folder.path.mkdir()
    torch.save([Boom()], folder.path / "s.pt")
    folder.segments = [Segment(index=0, start=0, frames=4, first_pts=0, file="seg.nut", state="s.pt")]
    from vidcolor.errors import ProcessingError

    with pytest.raises(ProcessingError, match="unreadable saved state"):
        folder.load_states()


def load_fuzzer():
    spec = importlib.util.spec_from_file_location("fuzz_inputs", REPO / "docs" / "fuzz_inputs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fuzz_inputs", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_fuzzed_inputs_never_traceback_nor_come_out_short_in_silence(tmp_path):
    """Twelve seeded mutants of small mp4/mov/mkv/webm clips (``docs/fuzz_inputs.py``), each run
    with and without ``--allow-truncated`` by the CLI in a process of its own."""
    fuzz = load_fuzzer()
    results = fuzz.fuzz(12, seed=1, folder=tmp_path)
    for mode, r in results.items():
        assert r["columns"]["traceback"] == 0, (mode, r)
        assert r["columns"]["silent"] == 0, (mode, r)
        assert r["columns"]["hang"] == 0, (mode, r)
        assert sum(r["columns"].values()) == 12
    assert results["default"]["columns"]["refused"] > 0  # the seed damages some beyond use


def test_joined_segments_state_the_length_their_frames_hold(tmp_path, monkeypatch):
    """Segment packets keep their durations in the output's time base: the Matroska video DURATION
    of a resumable run's output ends with its last frame (the reader's truncation check trusts it)."""
    monkeypatch.setenv("VIDCOLOR_SEGMENT_SECONDS", "0.5")
    src = make_clip(tmp_path / "c.mp4", frames=30, width=96, height=64)
    out = tmp_path / "o.mkv"
    r = invoke("run", src, "-o", out, "--style", "sepia", "--resumable", "--codec", "ffv1")
    assert r.exit_code == 0, r.output
    with av.open(str(out)) as c:
        v = c.streams.video[0]
        last = max(p.pts * v.time_base for p in c.demux(v) if p.size)
        h, m, s = v.metadata["DURATION"].split(":")
    assert abs(float(last) + 1 / 24 - (int(h) * 3600 + int(m) * 60 + float(s))) < 0.002  # ends with the last frame
    with VideoReader(out) as reader:
        assert sum(len(ch) for ch in reader.chunks(8)) == 30
