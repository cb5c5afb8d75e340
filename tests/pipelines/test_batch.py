"""`vidcolor batch`: mirrored tree, bad files reported, reruns skip what is done, Ctrl-C is clean."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from vidcolor.pipelines.manifest import MANIFEST_NAME

from tests.conftest import decode_all, make_clip, packets, video_pts
from tests.pipelines.helpers import files_under, make_tree, spawn, vidcolor, write_style
from vidcolor.cli import main


def load_manifest(out: Path) -> dict:
    return json.loads((out / MANIFEST_NAME).read_text())


def output_mtimes(out: Path) -> dict[str, int]:
    return {rel: (out / rel).stat().st_mtime_ns for rel in files_under(out) if rel.endswith((".mp4", ".mov", ".mkv"))}


def test_tree_with_a_corrupt_and_a_non_video_file(tmp_path, shared_data):
    src, out = tmp_path / "in", tmp_path / "out"
    clips = make_tree(src, bad=True, shared_data=shared_data)
    r = vidcolor("batch", str(src), "-o", str(out), "--recursive", "--jobs", "2", "--json")
    assert r.returncode == 1, r.stderr
    report = json.loads(r.stdout)
    assert report["counts"] == {"done": 4, "skipped": 0, "failed": 2}
    rows = {f["input"]: f for f in report["files"]}
    failed = {k: v["error"] for k, v in rows.items() if v["status"] == "failed"}
    assert set(failed) == {"sub/corrupt.mp4", "sub/deeper/notes.mov"}
    assert "corrupt data at frame" in failed["sub/corrupt.mp4"]
    assert "not a readable video file" in failed["sub/deeper/notes.mov"]
    assert all("\n" not in e for e in failed.values())  # one-line reasons
    # every good file, in the mirrored tree, whole: frames, timing and sound
    assert files_under(out) == set(clips) | {MANIFEST_NAME, ".vidcolor-batch.lock"}
    for rel, n in clips.items():
        assert len(decode_all(out / rel)) == n
        assert video_pts(out / rel) == video_pts(src / rel)
        assert packets(out / rel, "audio") == packets(src / rel, "audio")
    m = load_manifest(out)
    assert m["files"]["sub/corrupt.mp4"]["status"] == "failed" and m["files"]["sub/corrupt.mp4"]["error"]
    assert {k for k, e in m["files"].items() if e["status"] == "done"} == set(clips)
    e = m["files"]["a.mp4"]
    assert e["size"] == (src / "a.mp4").stat().st_size and e["mtime_ns"] == (src / "a.mp4").stat().st_mtime_ns
    assert e["fingerprint"].startswith("sha256-ends:") and e["settings_hash"] == m["settings_hash"]
    assert "readme.txt" not in m["files"]


def test_rerun_skips_done_and_redoes_only_what_changed(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    clips = make_tree(src)
    args = ["-q", "batch", str(src), "-o", str(out), "-r", "--jobs", "2"]
    runner = CliRunner()
    assert runner.invoke(main, args).exit_code == 0
    first = output_mtimes(out)
    assert set(first) == set(clips)

    r = runner.invoke(main, [*args, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["counts"] == {"done": 0, "skipped": 4, "failed": 0}
    assert output_mtimes(out) == first  # nothing redone

    st = (src / "sub/b.mov").stat()  # touch: same content, newer mtime
    os.utime(src / "sub/b.mov", ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    r = runner.invoke(main, [*args, "--json"])
    assert json.loads(r.output)["counts"] == {"done": 1, "skipped": 3, "failed": 0}
    second = output_mtimes(out)
    assert {k for k in clips if second[k] != first[k]} == {"sub/b.mov"}

    make_clip(src / "a.mp4", frames=20)  # new content (and size)
    r = runner.invoke(main, [*args, "--json"])
    assert {f["input"] for f in json.loads(r.output)["files"] if f["status"] == "done"} == {"a.mp4"}
    assert len(decode_all(out / "a.mp4")) == 20

    third = output_mtimes(out)
    r = runner.invoke(main, [*args, "--style", "sepia", "--json"])  # new settings: everything is redone
    assert json.loads(r.output)["counts"] == {"done": 4, "skipped": 0, "failed": 0}
    assert all(output_mtimes(out)[k] != third[k] for k in clips)
    assert load_manifest(out)["settings"]["style"] == "sepia"

    (out / "sub/deeper/c.mkv").unlink()  # an output deleted by hand is made again
    r = runner.invoke(main, [*args, "--style", "sepia", "--json"])
    assert {f["input"] for f in json.loads(r.output)["files"] if f["status"] == "done"} == {"sub/deeper/c.mkv"}


def test_ctrl_c_stops_cleanly_and_a_rerun_finishes(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    clips = {f"clip{i}.mp4": 48 for i in range(6)}
    src.mkdir()
    for rel, n in clips.items():
        make_clip(src / rel, frames=n, width=320, height=192)
    style = write_style(tmp_path)
    args = ["batch", str(src), "-o", str(out), "--style", str(style), "--jobs", "1"]
    proc = spawn(*args)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:  # interrupt after the first finished file
        if (out / MANIFEST_NAME).exists() and any(
                e["status"] == "done" for e in load_manifest(out)["files"].values()):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the batch finished before it could be interrupted"
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert not [p for p in out.rglob("*.part")]
    m = load_manifest(out)
    done = {k for k, e in m["files"].items() if e["status"] == "done"}
    assert done and done != set(clips)
    assert {e["status"] for k, e in m["files"].items() if k not in done} == {"pending"}
    for k in done:
        assert len(decode_all(out / k)) == clips[k]
    r = vidcolor(*args, "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["counts"]["skipped"] == len(done) and report["counts"]["done"] == len(clips) - len(done)


def test_usage_errors(tmp_path, monkeypatch):
    runner = CliRunner()
    (tmp_path / "in").mkdir()
    r = runner.invoke(main, ["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out")])
    assert r.exit_code == 2 and "no file matches" in r.output
    r = runner.invoke(main, ["batch", str(tmp_path / "nope"), "-o", str(tmp_path / "out")])
    assert r.exit_code == 2 and "no such folder" in r.output
    r = runner.invoke(main, ["batch", str(tmp_path / "in"), "-o", str(tmp_path / "in")])
    assert r.exit_code == 2 and "must differ" in r.output
    r = runner.invoke(main, ["batch", str(tmp_path / "in"), "-o", str(tmp_path / "o"), "--style", "nope"])
    assert r.exit_code == 2 and "unknown style" in r.output
    r = runner.invoke(main, ["batch", str(tmp_path / "in"), "-o", str(tmp_path / "o"), "--address", "auto"])
    assert r.exit_code == 2 and "--executor ray" in r.output
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    r = runner.invoke(main, ["batch", str(tmp_path / "in"), "-o", str(tmp_path / "o"), "--executor", "ray"])
    assert r.exit_code == 2 and "pip install 'vidcolor[ray]'" in r.output


def test_a_second_batch_on_the_same_output_is_refused(tmp_path):
    from vidcolor.pipelines.batch import _OutputLock

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    make_clip(src / "a.mp4", frames=6)
    with _OutputLock(out):
        r = CliRunner().invoke(main, ["batch", str(src), "-o", str(out)])
    assert r.exit_code == 2 and "another vidcolor batch" in r.output


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="worker crash simulated with a Linux signal")
def test_a_worker_that_dies_fails_only_its_file(tmp_path, monkeypatch):
    from vidcolor.pipelines import batch as batch_mod

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for name in ("a.mp4", "b.mp4"):
        make_clip(src / name, frames=6)
    crashed = []

    class Crashy(batch_mod.LocalExecutor):  # kill the worker that gets a.mp4, as a decoder segfault would
        def run(self, tasks, on_result):
            import multiprocessing.connection as mpc

            original = mpc.Connection.send

            def send(conn, obj):
                original(conn, obj)
                if isinstance(obj, batch_mod.FileTask) and obj.key == "a.mp4" and not crashed:
                    crashed.append(obj.key)
                    # killed right after the send, the worker cannot have finished a.mp4 however fast it is
                    for child in __import__("multiprocessing").active_children():
                        if child.name == "vidcolor-batch-worker":
                            os.kill(child.pid, signal.SIGKILL)

            monkeypatch.setattr(mpc.Connection, "send", send)
            return super().run(tasks, on_result)

    report = batch_mod.run_batch(src, out, executor=Crashy(jobs=1))
    rows = {f.input: f for f in report.files}
    assert rows["a.mp4"].status == "failed" and "worker process died (signal 9)" in rows["a.mp4"].error
    assert rows["b.mp4"].status == "done" and len(decode_all(out / "b.mp4")) == 6
