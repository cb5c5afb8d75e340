"""`vidcolor batch --executor ray` on a local Ray cluster of 2 CPUs started by the tests."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from vidcolor.pipelines.manifest import MANIFEST_NAME
from vidcolor.pipelines.run import run

from tests.conftest import decode_all, make_clip, packets, video_pts
from tests.pipelines.helpers import make_tree, write_style
from vidcolor.cli import main

ray = pytest.importorskip("ray", reason="Ray is the optional extra vidcolor[ray] (pip install -e '.[dev]' has it)")


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray instance with 2 CPUs in this process; the CLI, run in-process, attaches to it."""
    ray.init(address="local", num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False,
             configure_logging=False, _node_ip_address="127.0.0.1")
    yield ray.cluster_resources()
    ray.shutdown()


def comparable(report: dict) -> list[tuple]:
    return [(f["input"], f["output"], f["status"], f["error"], f["frames"]) for f in report["files"]]


def manifest_files(out) -> dict:
    m = json.loads((out / MANIFEST_NAME).read_text())
    return {k: {f: v for f, v in e.items() if f != "seconds"} for k, e in m["files"].items()}


def test_ray_batch_gives_the_same_manifest_and_summary_as_local(tmp_path, shared_data, ray_cluster):
    assert ray_cluster["CPU"] == 2
    src = tmp_path / "in"
    clips = make_tree(src, bad=True, shared_data=shared_data)
    runner = CliRunner()
    common = ["-q", "batch", str(src), "-r", "--style", "sepia", "--json"]
    local = runner.invoke(main, [*common, "-o", str(tmp_path / "local"), "--jobs", "2"])
    remote = runner.invoke(main, [*common, "-o", str(tmp_path / "ray"), "--executor", "ray", "--cpus-per-job", "1"])
    assert local.exit_code == remote.exit_code == 1, remote.output
    a, b = json.loads(local.output), json.loads(remote.output)
    assert (a["executor"], b["executor"]) == ("local", "ray")
    assert a["counts"] == b["counts"] == {"done": 4, "skipped": 0, "failed": 2}
    assert comparable(a) == comparable(b) and a["settings_hash"] == b["settings_hash"]
    assert manifest_files(tmp_path / "local") == manifest_files(tmp_path / "ray")
    for rel, n in clips.items():
        assert len(decode_all(tmp_path / "ray" / rel)) == n
    # a rerun on Ray skips what is done, like the local one
    again = runner.invoke(main, [*common, "-o", str(tmp_path / "ray"), "--executor", "ray"])
    assert json.loads(again.output)["counts"] == {"done": 0, "skipped": 4, "failed": 2}


def test_ray_segment_parallel_film_joins_without_a_seam(tmp_path, ray_cluster):
    from vidcolor.flow import DISFlow
    from vidcolor.metrics import warping_error

    src = tmp_path / "in"
    src.mkdir()
    make_clip(src / "film.mkv", frames=48)
    style = write_style(tmp_path)
    seq = run(src / "film.mkv", tmp_path / "seq.mkv", str(style), codec="ffv1", resumable=False)
    out = tmp_path / "out"
    # 0.5 s = 12 frames, rounded up to whole 8-frame chunks: segments of 16 frames, 3 parallel tasks
    r = CliRunner().invoke(main, ["-q", "batch", str(src), "-o", str(out), "--style", str(style), "--codec", "ffv1",
                                  "--executor", "ray", "--split-seconds", "0.5", "--chunk-size", "8", "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    assert report["counts"] == {"done": 1, "skipped": 0, "failed": 0} and report["files"][0]["frames"] == 48
    par = out / "film.mkv"
    # the film did go through three segment tasks (and the join task)
    from vidcolor.pipelines.executor import FileTask
    from vidcolor.pipelines.ray_executor import RayExecutor
    from vidcolor.settings import make_settings

    settings = make_settings(str(style), chunk_size=8, overwrite=True)
    task = FileTask("film.mkv", str(src / "film.mkv"), str(tmp_path / "probe.mkv"), settings)
    plan = RayExecutor(split_seconds=0.5)._plan_split(task)
    # (Matroska stores no frame count: probe estimates it from the duration, maybe a segment too many;
    # the last job reads to the real end, an empty one writes nothing)
    assert [j.start for j in plan.jobs][:3] == [0, 16, 32] and plan.jobs[-1].end is None
    assert not (out / "film.mkv.vidcolor-work").exists()
    assert video_pts(par) == video_pts(tmp_path / "seq.mkv") == video_pts(src / "film.mkv")
    assert packets(par, "audio") == packets(src / "film.mkv", "audio")
    a, b = decode_all(tmp_path / "seq.mkv").astype(int), decode_all(par).astype(int)
    assert len(b) == seq.frames == 48 and np.abs(a - b).max() <= 2
    errors = warping_error(b.astype(np.uint8), decode_all(src / "film.mkv"), DISFlow())[1]
    joins = [15, 31]  # pairs (15, 16) and (31, 32)
    assert max(errors[i] for i in joins) <= max(e for i, e in enumerate(errors) if i not in joins)
