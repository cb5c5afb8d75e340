"""SIGKILL the batch at many points; every rerun continues, and the end result is whole and single.

Each kill point is an event the test sees in the output folder (the manifest written, a ``.part``
there, a file recorded done), polled with a deadline: where the batch is when it dies does not
depend on how loaded the machine is.
"""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path

from vidcolor.pipelines.manifest import MANIFEST_NAME

from tests.conftest import decode_all, make_clip, video_pts
from tests.pipelines.helpers import files_under, spawn, vidcolor, write_style

# a deadline for each awaited event, far above what a loaded 2-core machine needs: a hang, not slowness
EVENT_TIMEOUT = 180.0


def manifest_done(out: Path) -> set[str]:
    try:
        m = json.loads((out / MANIFEST_NAME).read_text())  # never torn: written atomically
    except FileNotFoundError:
        return set()
    return {k for k, e in m["files"].items() if e["status"] == "done"}


def parts(out: Path) -> list[Path]:
    return list(out.rglob("*.part"))


def check_consistent(out: Path, clips: dict[str, int]) -> None:
    """After a kill: every output the manifest calls done is whole; the rest are pending. Killed
    before its first manifest, the batch has written no output yet."""
    if not (out / MANIFEST_NAME).exists():
        assert not (out.exists() and set(clips) & files_under(out))
        return
    m = json.loads((out / MANIFEST_NAME).read_text())
    for key, e in m["files"].items():
        assert e["status"] in ("done", "pending"), (key, e)
        if e["status"] == "done":
            assert len(decode_all(out / e["output"])) == clips[key]


def test_sigkill_at_many_points_then_rerun(tmp_path):
    rng = random.Random(6)
    src, out = tmp_path / "in", tmp_path / "out"
    clips = {f"{d}clip{i}.mp4": 40 + i for i, d in enumerate(["", "", "x/", "x/", "x/y/", "x/y/", "z/", "z/"])}
    for rel, n in clips.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        make_clip(src / rel, frames=n, width=320, height=192)
    style = write_style(tmp_path)  # the stabilizer makes each file take a while
    args = ["-q", "batch", str(src), "-o", str(out), "--style", str(style), "-r", "--jobs", "2"]

    # Kill points, each an event of the run it interrupts; all chosen so that work remains.
    def mid_file_after(polls):
        """True on the ``polls``-th poll that finds a .part: a kill some way into an encode."""
        seen = 0

        def condition(before):
            nonlocal seen
            seen += bool(parts(out))
            return seen > polls
        return condition

    kill_points = [
        ("while starting (the manifest was just written)", lambda before: (out / MANIFEST_NAME).exists()),
        ("mid-file (a .part exists)", lambda before: bool(parts(out))),
        ("right after a file was recorded done", lambda before: len(manifest_done(out)) > len(before)),
        ("mid-file, a moment later", mid_file_after(rng.randrange(5, 40))),
        ("after two more files", lambda before: len(manifest_done(out)) >= len(before) + 2),
        ("mid-file, at a random point", mid_file_after(rng.randrange(0, 100))),
    ]
    killed = []
    for name, condition in kill_points:
        before = manifest_done(out)
        if before == set(clips):
            break
        proc = spawn(*args)
        deadline = time.monotonic() + EVENT_TIMEOUT
        while proc.poll() is None and not condition(before):
            assert time.monotonic() < deadline, f"{name}: not reached in {EVENT_TIMEOUT:.0f} s"
            time.sleep(0.005)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)  # the batch process only: its workers die with it
            killed.append(name)
        proc.communicate(timeout=60)
        check_consistent(out, clips)
    assert len(killed) >= 5, f"only {len(killed)} kills landed mid-run: {killed}"

    r = vidcolor(*args, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["counts"]["failed"] == 0
    assert not parts(out)
    # each output exactly once, nothing else (no duplicates, no leftovers), all whole
    assert files_under(out) == set(clips) | {MANIFEST_NAME, ".vidcolor-batch.lock"}
    for rel, n in clips.items():
        assert len(decode_all(out / rel)) == n
        assert video_pts(out / rel) == video_pts(src / rel)
    assert manifest_done(out) == set(clips)
    r = vidcolor(*args, "--json")
    assert json.loads(r.stdout)["counts"] == {"done": 0, "skipped": len(clips), "failed": 0}
