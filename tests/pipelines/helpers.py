"""Shared helpers of the pipeline tests: a style with temporal state, clip trees, the CLI in a subprocess."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import make_clip

# A colour grade plus the flow-guided stabilizer: the stabilizer carries state across chunks, so
# resumes and segment joins are tested against something that can jump.
STABILIZED_STYLE = """description = "sepia + stabilizer (tests)"
[[stages]]
type = "grade"
preset = "sepia"
[[stages]]
type = "stabilize"
strength = 0.6
flow = "dis"
"""


def write_style(folder: Path) -> Path:
    path = folder / "stab.toml"
    path.write_text(STABILIZED_STYLE)
    return path


def vidcolor_exe() -> str:
    return str(Path(sys.executable).with_name("vidcolor"))


def cli_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "CI": "true", **extra}


def vidcolor(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Run the installed CLI in a subprocess, as a user would."""
    return subprocess.run([vidcolor_exe(), *args], capture_output=True, text=True, env=cli_env(**env), timeout=300)


def _default_stop_signals() -> None:
    # A test runner started in the background by a non-interactive shell (`cmd &`) inherits SIGINT
    # ignored, and under nohup SIGHUP too, and so would the CLI (it keeps ignored signals ignored):
    # give it a terminal's default Ctrl-C and the default of the signals the CLI unwinds on.
    from vidcolor.cli.signals import STOP_SIGNALS

    for name in ("SIGINT", *STOP_SIGNALS):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)


def spawn(*args: str, **env: str) -> subprocess.Popen:
    """Start the CLI in its own session (so a test can signal it like a terminal would)."""
    return subprocess.Popen([vidcolor_exe(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env(**env), start_new_session=True, preexec_fn=_default_stop_signals)


def make_tree(root: Path, *, bad: bool = False, frames: int = 12, width: int = 160, height: int = 96,
              shared_data: Path | None = None) -> dict[str, int]:
    """A nested folder of clips -> {relative path: frame count}. With ``bad``, also a corrupt mp4
    (from the shared data), a text file named .mov and a readme.txt (not matched by the patterns)."""
    clips = {"a.mp4": frames, "sub/b.mov": frames + 4, "sub/deeper/c.mkv": frames, "sub/deeper/d.mp4": frames + 2}
    for rel, n in clips.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        make_clip(root / rel, frames=n, width=width, height=height)
    if bad:
        assert shared_data is not None
        shutil.copy(shared_data / "videos/edge_cases/decord_corrupted.mp4", root / "sub/corrupt.mp4")
        (root / "sub/deeper/notes.mov").write_text("not a video\n")
        (root / "readme.txt").write_text("ignored\n")
    return clips


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
