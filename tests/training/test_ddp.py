"""torchrun --nproc_per_node 2 (gloo on CPU) trains a few steps and writes one checkpoint."""

from __future__ import annotations

import subprocess

from tests.conftest import REPO
from tests.training.conftest import PY, env, small_sets, train_clips
from vidcolor.training.checkpoint import list_checkpoints, load_checkpoint
from vidcolor.training.trainer import read_log


def test_torchrun_two_processes_gloo(data_dir, tmp_path, cache_dir):
    run = tmp_path / "ddp"
    data = [a for p in train_clips() for a in ("--data", p)]
    cmd = [PY, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "vidcolor.training",
           "colorize_tiny", *data, "--out", str(run),
           *small_sets(cache_dir, **{"train.steps": "4", "train.checkpoint_every": "4", "train.threads": "1"})]
    res = subprocess.run(cmd, cwd=REPO, env=env(OMP_NUM_THREADS="1"), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    found = list_checkpoints(run)
    assert [s for s, _ in found] == [4]
    ckpt = load_checkpoint(found[0][1])
    assert ckpt["world_size"] == 2 and ckpt["data"]["next_sample"] == 4 * 2 * 2
    assert [r["step"] for r in read_log(run)] == [1, 2, 3, 4]  # rank 0 alone writes the log
