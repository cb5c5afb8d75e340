"""The refactor of issue #17 changes no output: the CLI of a recorded commit and the current CLI give
the same decoded frames and pts for noir, colorize, a resumable run and a batch on the same inputs.

The recorded commit's ``vidcolor``, ``pipelines``, ``training`` and ``configs`` folders are laid out
as the installed package (pyproject's package-dir) in a temporary folder put first on PYTHONPATH;
both CLIs run with this interpreter, each checking that its ``vidcolor`` is the one meant.

Frames are compared on FFV1 (lossless) output: x264 with frame threads is not bit-exact between two
runs of the same code on a loaded machine. One x264 run checks the encoder settings instead (the
options string x264 writes into the stream) with the pts.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
import pytest

from tests.conftest import REPO, make_clip
from tests.pipelines.helpers import write_style

# the last commit before the #17 refactor
RECORDED = "3884aa9"

# Runs the CLI of the vidcolor found first on sys.path, after checking it is the one under ROOT.
CLI = ("import sys, vidcolor; root = sys.argv.pop(1); "
       "assert vidcolor.__file__.startswith(root), f'vidcolor from {vidcolor.__file__}, not {root}'; "
       "sys.argv[0] = 'vidcolor'; from vidcolor.cli import main; main()")


def recorded_tree(dest: Path) -> Path:
    """The recorded commit's package, laid out as installed, under ``dest``; skip without the history."""
    try:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", RECORDED, "vidcolor", "pipelines", "training",
                                  "configs"], capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"git is not usable here ({exc})")
    if archive.returncode != 0:
        pytest.skip(f"commit {RECORDED} is not in this clone (a shallow clone?): "
                    f"{archive.stderr.decode(errors='replace').strip()[:200]}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
    for sub in ("pipelines", "training", "configs"):  # pyproject: vidcolor.<sub> is the top-level <sub>/
        (dest / sub).rename(dest / "vidcolor" / sub)
    return dest


def cli(root: Path, cwd: Path, *args: str, pythonpath: Path | None = None, **env: str) -> None:
    """``vidcolor ARGS`` with the vidcolor under ``root`` (from ``pythonpath`` when given, else installed)."""
    environ = {**os.environ, "CI": "true", "VIDCOLOR_HOME": str(cwd / "home"), **env}
    environ.pop("PYTHONPATH", None)
    if pythonpath:
        environ["PYTHONPATH"] = str(pythonpath)
    # cwd: not the repository, whose vidcolor/ would come first on sys.path for `python -c`
    r = subprocess.run([sys.executable, "-c", CLI, str(root), "-q", *args], cwd=cwd, env=environ,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"vidcolor {' '.join(args)} ({root}):\n{r.stderr}"


def decoded(path: Path) -> list[tuple[int, np.ndarray]]:
    """(pts, planes) of every decoded video frame, in the stream's own pixel format."""
    with av.open(str(path)) as c:
        return [(f.pts, f.to_ndarray()) for f in c.decode(video=0)]


def x264_options(path: Path) -> str:
    """The settings x264 wrote into the stream's SEI (``options: cabac=1 ref=1 ... crf=18.0 ...``)."""
    found = re.search(rb"options: ([ -~]+)", path.read_bytes())
    assert found, f"{path}: no x264 options string"
    return found.group(1).decode()


def assert_same_video(old: Path, new: Path) -> None:
    a, b = decoded(old), decoded(new)
    assert [p for p, _ in a] == [p for p, _ in b], f"{new.name}: pts differ"
    assert len(a) > 0
    for i, ((_, x), (_, y)) in enumerate(zip(a, b)):
        assert x.shape == y.shape and np.array_equal(x, y), f"{new.name}: frame {i} differs"


def bw_clip(shared: Path, dest: Path, frames: int = 30) -> Path:
    """The first ``frames`` frames of the shared Chaplin clip (black and white, 640x360) as H.264."""
    with av.open(str(shared / "videos/bw/moviepy_chaplin_bw.mp4")) as src, av.open(str(dest), "w") as out:
        s_in = src.streams.video[0]
        s_out = out.add_stream("libx264", rate=s_in.average_rate)
        s_out.width, s_out.height, s_out.pix_fmt = s_in.width, s_in.height, "yuv420p"
        for i, frame in enumerate(src.decode(s_in)):
            if i == frames:
                break
            out.mux(s_out.encode(av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")))
        out.mux(s_out.encode(None))
    return dest


COLORIZE = "<the recorded colorizer>"


@pytest.mark.slow
def test_recorded_commit_and_current_code_give_the_same_frames(tmp_path: Path, shared_data: Path) -> None:
    old_pkg = recorded_tree(tmp_path / "old_pkg")
    clip = bw_clip(shared_data, tmp_path / "chaplin30.mp4")
    tree = tmp_path / "tree"
    for rel, n in {"a.mp4": 24, "sub/b.mp4": 30}.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        make_clip(tree / rel, frames=n, width=160, height=96)
    style = write_style(tmp_path)  # a grade and a stabilizer: state across chunks and segments
    lossless = ["--codec", "ffv1", "--pix-fmt", "yuv420p"]
    runs = {
        "noir.mkv": ["run", str(clip), "--style", "noir", *lossless],
        # the recorded commit's `colorize` style is today's `colorize-fast` (same weights and settings)
        "colorize.mkv": ["run", str(clip), "--style", COLORIZE, *lossless],
        # VIDCOLOR_SEGMENT_SECONDS: 0.4 s segments, so the 30 frames are three segments joined
        "resumable.mkv": ["run", str(clip), "--style", COLORIZE, "--resumable", "--chunk-size", "4", *lossless],
        "x264.mp4": ["run", str(clip), "--style", "sepia", "--crf", "20", "-e", "preset=faster"],
    }

    def run_side(side: str, root: Path, pythonpath: Path | None) -> None:
        out = tmp_path / side
        out.mkdir()
        for name, args in runs.items():
            args = [("colorize" if side == "old" else "colorize-fast") if a == COLORIZE else a for a in args]
            cli(root, out, *args, "-o", str(out / name), pythonpath=pythonpath, VIDCOLOR_SEGMENT_SECONDS="0.4")
        cli(root, out, "batch", str(tree), "-o", str(out / "batch"), "-r", "--style", str(style), "--jobs", "2",
            *lossless, pythonpath=pythonpath)

    with ThreadPoolExecutor(2) as pool:  # the two sides side by side: one core each on a 2-core machine
        for done in [pool.submit(run_side, "old", old_pkg / "vidcolor", old_pkg), pool.submit(run_side, "new", REPO, None)]:
            done.result()
    old, new = tmp_path / "old", tmp_path / "new"
    for name in runs:
        if name == "x264.mp4":
            assert x264_options(old / name) == x264_options(new / name)
            assert [p for p, _ in decoded(old / name)] == [p for p, _ in decoded(new / name)]
        else:
            assert_same_video(old / name, new / name)
    for rel in ("a.mp4", "sub/b.mp4"):
        assert_same_video(old / "batch" / rel, new / "batch" / rel)
