"""Resumable long runs: segments, kill and resume with temporal state, joins by remux, segment-parallel."""

from __future__ import annotations

import json
import signal
import time

import numpy as np
import pytest
from click.testing import CliRunner
from vidcolor.pipelines import segments
from vidcolor.pipelines.run import run
from vidcolor.pipelines.segments import run_resumable
from vidcolor.pipelines.split import run_split
from vidcolor.pipelines.workdir import MANIFEST_NAME, work_dir_for

from tests.conftest import add_subtitles, decode_all, make_clip, packets, video_pts
from tests.pipelines.helpers import spawn, vidcolor, write_style
from vidcolor.cli import main
from vidcolor.flow import DISFlow

SEG = 8  # frames per segment in these tests (one chunk)
ENV = {"VIDCOLOR_SEGMENT_SECONDS": str(SEG / 24)}  # make_clip's 24 fps


def recorded_segments(work) -> list[dict]:
    try:
        return json.loads((work / MANIFEST_NAME).read_text())["segments"]
    except (FileNotFoundError, ValueError):
        return []


def test_kill_a_resumable_run_mid_film_and_rerun(tmp_path):
    """The acceptance test: SIGKILL after some segments, rerun the same command; the result equals
    an uninterrupted run (frames, pts, audio) and the frames after the resume point are exact."""
    src = make_clip(tmp_path / "film.mp4", frames=160)
    style = write_style(tmp_path)
    reference = run(src, tmp_path / "reference.mkv", str(style), codec="ffv1", resumable=False)
    out = tmp_path / "out.mkv"
    work = work_dir_for(out)
    args = ["-q", "run", str(src), "-o", str(out), "--style", str(style), "--codec", "ffv1", "--resumable"]
    proc = spawn(*args, **ENV)
    deadline = time.monotonic() + 120
    while proc.poll() is None and len(recorded_segments(work)) < 3 and time.monotonic() < deadline:
        time.sleep(0.002)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    done = recorded_segments(work)
    resume_at = done[-1]["start"] + done[-1]["frames"]
    assert not out.exists() and 0 < resume_at < reference.frames
    assert all((work / s["state"]).is_file() for s in done)

    r = vidcolor(*args[1:], "--json", **ENV)  # the same command (with --json to read the report)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["frames"] == reference.frames
    resumed_at = int(report["warnings"][0].split("resumed at frame ")[1].split()[0])
    assert resumed_at >= resume_at  # segments may have finished between the poll and the kill
    assert report["resumed_at"] == resumed_at
    assert not work.exists() and not list(tmp_path.glob("*.part"))

    assert video_pts(out) == video_pts(tmp_path / "reference.mkv")
    # audio intact: the source's packets, timed as a plain run times them in Matroska
    assert packets(out, "audio") == packets(tmp_path / "reference.mkv", "audio")
    assert [b for _, b in packets(out, "audio")] == [b for _, b in packets(src, "audio")]
    got, want = decode_all(out), decode_all(tmp_path / "reference.mkv")
    assert got.shape == want.shape
    assert np.array_equal(got[resumed_at:], want[resumed_at:])  # the stabilizer continued exactly
    assert np.array_equal(got, want)

    # and restoring the state is what makes that true: a cold start at the resume point differs
    cold = run_split(src, tmp_path / "cold.mkv", str(style), codec="ffv1", segment_frames=SEG, warmup=0)
    assert cold.frames == reference.frames
    assert not np.array_equal(decode_all(tmp_path / "cold.mkv")[resumed_at], want[resumed_at])


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_resumable_output_matches_a_plain_run(tmp_path, suffix):
    """libx264, audio and subtitles: pts, audio and subtitle packets equal a plain run's; the
    segments are joined by remux (each segment's first packet is a keyframe)."""
    clip = make_clip(tmp_path / "clip.mp4", frames=30)
    src = add_subtitles(clip, tmp_path / f"subs{suffix}")
    plain = run(src, tmp_path / f"plain{suffix}", "sepia", resumable=False)
    report = run_resumable(src, tmp_path / f"res{suffix}", "sepia", segment_frames=SEG)
    assert report.frames == plain.frames == 30
    assert video_pts(tmp_path / f"res{suffix}") == video_pts(tmp_path / f"plain{suffix}") == video_pts(src)
    for kind in ("audio", "subtitle"):
        assert packets(tmp_path / f"res{suffix}", kind) == packets(tmp_path / f"plain{suffix}", kind)
        assert [b for _, b in packets(tmp_path / f"res{suffix}", kind)] == [b for _, b in packets(src, kind)]
    assert len(decode_all(tmp_path / f"res{suffix}")) == 30
    import av

    with av.open(str(tmp_path / f"res{suffix}")) as c:
        assert {k.lower(): v for k, v in c.metadata.items()}.get("vidcolor_style") == "sepia"  # mkv upper-cases
        keys = [p.is_keyframe for p in c.demux(c.streams.video[0]) if p.size]
    assert all(keys[i] for i in range(0, 30, SEG))


def test_work_folder_leftovers_and_changed_settings(tmp_path):
    src = make_clip(tmp_path / "clip.mkv", frames=24, codec="ffv1", audio=False)
    out = tmp_path / "out.mkv"
    work = work_dir_for(out)
    # a crash left: a .part, a segment never recorded, and a manifest of *other* settings
    work.mkdir()
    (work / "seg-00001.nut.part").write_bytes(b"junk")
    (work / "seg-00007.nut").write_bytes(b"junk")
    (work / MANIFEST_NAME).write_text(json.dumps({"format": "vidcolor-segments/1", "key": "other", "segments": [
        {"index": 0, "start": 0, "frames": 8, "first_pts": 0, "file": "seg-00007.nut", "state": None}]}))
    report = run_resumable(src, out, "noir", codec="ffv1", segment_frames=SEG)
    assert report.frames == 24 and not any("resumed" in w for w in report.warnings)
    assert not work.exists() and len(decode_all(out)) == 24


def test_run_is_resumable_by_default_above_the_threshold(tmp_path, monkeypatch):
    src = make_clip(tmp_path / "clip.mp4", frames=12, audio=False)
    calls = []
    real = segments.run_resumable
    monkeypatch.setattr(segments, "run_resumable", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setenv("VIDCOLOR_RESUMABLE_MIN_SECONDS", "10")
    run(src, tmp_path / "short.mp4", "noir")
    assert calls == []  # 0.5 s < 10 s: a plain run
    monkeypatch.setenv("VIDCOLOR_RESUMABLE_MIN_SECONDS", "0.25")
    run(src, tmp_path / "long.mp4", "noir")
    assert calls == [1]
    r = CliRunner().invoke(main, ["-q", "run", str(src), "-o", str(tmp_path / "no.mp4"), "--no-resumable"])
    assert r.exit_code == 0 and calls == [1]
    assert segments.RESUMABLE_MIN_SECONDS == 600  # the documented default: 10 minutes


def test_a_finished_output_is_not_overwritten_without_overwrite(tmp_path):
    src = make_clip(tmp_path / "clip.mp4", frames=12, audio=False)
    run_resumable(src, tmp_path / "o.mp4", "noir", segment_frames=SEG)
    r = CliRunner().invoke(main, ["run", str(src), "-o", str(tmp_path / "o.mp4"), "--resumable"])
    assert r.exit_code == 2 and "exists" in r.output


def per_pair_warping_error(path, src) -> list[float]:
    from vidcolor.metrics import warping_error

    return warping_error(decode_all(path), decode_all(src), DISFlow())[1]


def test_segment_parallel_matches_sequential_without_a_seam(tmp_path):
    src = make_clip(tmp_path / "clip.mp4", frames=48)
    style = write_style(tmp_path)
    seq = run(src, tmp_path / "seq.mkv", str(style), codec="ffv1", resumable=False)
    par = run_split(src, tmp_path / "par.mkv", str(style), codec="ffv1", segment_frames=16)
    assert par.frames == seq.frames == 48
    assert video_pts(tmp_path / "par.mkv") == video_pts(tmp_path / "seq.mkv")  # (Matroska: in ms)
    assert packets(tmp_path / "par.mkv", "audio") == packets(tmp_path / "seq.mkv", "audio")
    a, b = decode_all(tmp_path / "seq.mkv").astype(int), decode_all(tmp_path / "par.mkv").astype(int)
    assert np.abs(a - b).max() <= 2  # warm-up: the state at each join is the sequential one, to 8-bit rounding
    errors = per_pair_warping_error(tmp_path / "par.mkv", src)
    joins = [15, 31]  # pair t-1 -> t for t = 16, 32
    others = [e for i, e in enumerate(errors) if i not in joins]
    assert max(errors[i] for i in joins) <= max(others)
    # without warm-up the state restarts cold at each join and the pictures there differ
    cold = run_split(src, tmp_path / "cold.mkv", str(style), codec="ffv1", segment_frames=16, warmup=0)
    c = decode_all(tmp_path / "cold.mkv").astype(int)
    assert cold.frames == 48 and np.abs(c[16] - a[16]).mean() > 10 * np.abs(b[16] - a[16]).mean() + 0.05
