"""SIGTERM and SIGHUP stop ``vidcolor run`` and ``vidcolor batch`` as Ctrl-C does: no ``.part`` file
left behind, one line on stderr, exit 128 + the signal."""

from __future__ import annotations

import signal
import time

import pytest

from tests.conftest import make_clip
from tests.pipelines.helpers import spawn, write_style


def wait_for(predicate, proc, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while proc.poll() is None and not predicate() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert proc.poll() is None, "the command finished before it could be signalled"
    assert predicate(), "timed out waiting"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_run_stopped_by_a_signal_leaves_no_part_file(tmp_path, sig):
    src = make_clip(tmp_path / "in.mp4", frames=480, width=320, height=192)
    out = tmp_path / "out.mkv"
    part = tmp_path / "out.mkv.part"
    proc = spawn("run", str(src), "-o", str(out), "--style", str(write_style(tmp_path)), "--no-resumable")
    wait_for(part.exists, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    assert f"vidcolor: error: interrupted ({sig.name})" in err
    assert "Traceback" not in err
    assert not part.exists() and not out.exists()


def test_batch_stopped_by_sigterm_leaves_no_part_file(tmp_path):
    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(3):
        make_clip(src / f"c{i}.mp4", frames=240, width=320, height=192)
    proc = spawn("batch", str(src), "-o", str(dst), "--style", str(write_style(tmp_path)), "--jobs", "1")
    wait_for(lambda: any(dst.glob("*.part")), proc)
    proc.send_signal(signal.SIGTERM)  # the parent only: it stops its worker
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "interrupted (SIGTERM)" in err and "Traceback" not in err
    assert not list(dst.rglob("*.part"))
