"""SIGKILL in the middle of a run, --resume: the following steps' losses equal an uninterrupted run's."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import REPO
from tests.training.conftest import PY, env, small_sets, train_clips, vidcolor
from vidcolor.training.trainer import read_log

STEPS = 40


def args(run: Path, cache: str) -> list[str]:
    data = [a for p in train_clips() for a in ("--data", p)]
    return ["train", "colorize_tiny", *data, "--out", str(run),
            *small_sets(cache, **{"train.steps": str(STEPS), "train.decay_start": "20",
                                  "train.checkpoint_every": "10", "objective.gan_mode": "lsgan"})]


def test_resume_after_sigkill_is_exact(data_dir, tmp_path, cache_dir):
    ref = tmp_path / "ref"
    res = vidcolor(args(ref, cache_dir))
    assert res.returncode == 0, res.stderr
    expected = read_log(ref)

    run = tmp_path / "run"
    proc = subprocess.Popen([str(Path(PY).parent / "vidcolor"), *args(run, cache_dir)], cwd=REPO, env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target = run / "checkpoints" / "step_0000010.pt"
    deadline = time.monotonic() + 240
    while not target.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    killed_at = max(int(p.stem.split("_")[1]) for p in (run / "checkpoints").glob("step_*.pt"))
    assert 10 <= killed_at < STEPS

    res = vidcolor(["train", "--resume", "--out", str(run)])  # recipe and data come from the run folder
    assert res.returncode == 0, res.stderr
    assert f"trained {killed_at} -> {STEPS} steps" in res.stdout
    got = read_log(run)
    assert [r["step"] for r in got] == list(range(1, STEPS + 1))  # rows after the checkpoint were replaced
    keys = [k for k in expected[0] if k != "seconds"]
    for want, have in zip(expected[killed_at:], got[killed_at:]):
        assert {k: have[k] for k in keys} == {k: want[k] for k in keys}


def test_existing_run_needs_resume(data_dir, tmp_path, cache_dir):
    run = tmp_path / "run"
    assert vidcolor(args(run, cache_dir) + ["--steps", "2"]).returncode == 0
    res = vidcolor(args(run, cache_dir) + ["--steps", "2"])
    assert res.returncode == 2 and "pass --resume" in res.stderr


def test_resume_may_change_threads_and_cadence_but_not_the_recipe(data_dir, tmp_path, cache_dir):
    """A run started with 2 threads continues with 1 (a shared machine): bookkeeping keys may change on
    --resume; anything that changes what is computed is refused with one line."""
    import json

    run = tmp_path / "run"
    assert vidcolor(args(run, cache_dir) + ["--steps", "2", "--set", "train.threads=2"]).returncode == 0
    res = vidcolor(["train", "--resume", "--out", str(run), "--steps", "4", "--set", "train.threads=1",
                    "--set", "train.checkpoint_every=1"])
    assert res.returncode == 0, res.stderr
    assert "trained 2 -> 4 steps" in res.stdout
    saved = json.loads((run / "recipe.json").read_text())
    assert saved["train"]["threads"] == 1 and saved["train"]["checkpoint_every"] == 1
    assert (run / "checkpoints" / "step_0000003.pt").is_file()
    res = vidcolor(["train", "--resume", "--out", str(run), "--set", "train.lr=1"])
    assert res.returncode == 2 and "--set train.lr: a resumed run keeps its recipe" in res.stderr
    assert "Traceback" not in res.stderr
