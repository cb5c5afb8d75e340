"""An output whose scratch names (``.part`` file, work folder) are the input or hold it is refused
before anything is deleted: ``vidcolor run`` and ``vidcolor batch`` never destroy an input."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import make_clip
from vidcolor.cli import main


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_cli(*args: str):
    return CliRunner().invoke(main, ["-q", *map(str, args)])


@pytest.mark.parametrize("resumable", ["--no-resumable", "--resumable"])
def test_input_named_like_the_outputs_part_file(tmp_path, resumable):
    src = make_clip(tmp_path / "clip.mp4", frames=6, audio=False)
    inp = tmp_path / "x.mp4.part"
    inp.write_bytes(src.read_bytes())
    before = digest(inp)
    r = run_cli("run", inp, "-o", tmp_path / "x.mp4", resumable)
    assert r.exit_code == 2, r.output
    assert "x.mp4.part is the input" in r.output and len(r.output.strip().splitlines()) == 1
    assert inp.exists() and digest(inp) == before
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_part_file_linked_to_the_input(tmp_path, link):
    src = make_clip(tmp_path / "clip.mp4", frames=6, audio=False)
    before = digest(src)
    part = tmp_path / "out.mp4.part"
    if link == "symlink":
        part.symlink_to(src)
    else:
        os.link(src, part)
    r = run_cli("run", src, "-o", tmp_path / "out.mp4")
    assert r.exit_code == 2, r.output
    assert "is the input" in r.output
    assert digest(src) == before


@pytest.mark.parametrize("resumable", ["--no-resumable", "--resumable"])
def test_input_inside_the_outputs_work_folder(tmp_path, resumable):
    work = tmp_path / "x.mp4.vidcolor-work"
    work.mkdir()
    inp = make_clip(work / "clip.mp4", frames=6, audio=False)
    before = digest(inp)
    r = run_cli("run", inp, "-o", tmp_path / "x.mp4", resumable)
    assert r.exit_code == 2, r.output
    assert "work folder" in r.output and "holds the input" in r.output
    assert digest(inp) == before


def test_work_folder_linked_to_the_inputs_folder(tmp_path):
    films = tmp_path / "films"
    films.mkdir()
    inp = make_clip(films / "clip.mp4", frames=6, audio=False)
    (tmp_path / "x.mp4.vidcolor-work").symlink_to(films, target_is_directory=True)
    r = run_cli("run", inp, "-o", tmp_path / "x.mp4", "--resumable")
    assert r.exit_code == 2, r.output
    assert inp.exists() and len(list(films.iterdir())) == 1


def test_batch_output_tree_overlapping_the_inputs(tmp_path):
    """``batch p/films -o p``: the output of ``films/x.mp4`` is ``p/films/x.mp4``, another input."""
    src = tmp_path / "films"
    (src / "films").mkdir(parents=True)
    a = make_clip(src / "x.mp4", frames=6, audio=False)
    b = make_clip(src / "films/x.mp4", frames=8, audio=False)
    before = digest(a), digest(b)
    r = run_cli("batch", src, "-o", tmp_path, "--recursive")
    assert r.exit_code == 2, r.output
    assert "is the input" in r.output
    assert (digest(a), digest(b)) == before


def test_batch_part_file_named_like_an_input(tmp_path):
    """An input ``in/a.mp4.part`` is the ``.part`` file of ``in/in/a.mp4``'s output when the batch
    writes into the parent folder."""
    src = tmp_path / "in"
    (src / "in").mkdir(parents=True)
    make_clip(src / "in/a.mp4", frames=6, audio=False)
    part = src / "a.mp4.part"
    part.write_bytes((src / "in/a.mp4").read_bytes())
    before = digest(part)
    r = run_cli("batch", src, "-o", tmp_path, "--recursive", "--pattern", "*.mp4,*.part")
    assert r.exit_code == 2, r.output
    assert "temporary file" in r.output
    assert part.exists() and digest(part) == before
