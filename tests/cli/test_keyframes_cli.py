"""`vidcolor keyframes` through the CLI: files written, the default folder, JSON, no overwrite
without --force, and one-line errors with exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
from click.testing import CliRunner

from tests.conftest import make_clip
from vidcolor.cli import main


def invoke(*args) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


def error_lines(r) -> list[str]:
    return [ln for ln in r.stderr.splitlines() if ln.strip()]


def written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def film(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("film") / "film.mp4", frames=12, audio=False)


def test_writes_files_and_tells_what_next(film, tmp_path) -> None:
    out = tmp_path / "kf"
    r = invoke("keyframes", film, "-o", out)
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [str(out / "000000.png"), str(out / "contact-sheet.jpg")]
    assert f"vidcolor run {film} --style colorize --keyframes {out}" in r.stderr
    assert cv2.imread(str(out / "contact-sheet.jpg")) is not None


def test_default_folder_json_and_no_contact_sheet(film, tmp_path) -> None:
    local = tmp_path / "clip.mp4"
    local.write_bytes(film.read_bytes())
    r = invoke("keyframes", local, "--json", "--no-contact-sheet", "--every", "0.25")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    folder = tmp_path / "clip.keyframes"
    assert report["folder"] == str(folder) and report["contact_sheets"] == []
    # 24 fps: frame 0, then 0.25 s (frame 6); frame 12 would be 0.5 s but the film has 12 frames
    assert [(k["frame"], k["seconds"]) for k in report["keyframes"]] == [(0, 0.0), (6, 0.25)]
    assert sorted(p.name for p in folder.iterdir()) == ["000000.png", "000006.png"]


def test_no_overwrite_without_force(film, tmp_path) -> None:
    out = tmp_path / "kf"
    assert invoke("keyframes", film, "-o", out, "-q").exit_code == 0
    painted = out / "000000.png"
    painted.write_bytes(cv2.imencode(".png", cv2.imread(str(painted)) // 2)[1].tobytes())
    before = painted.read_bytes()
    r = invoke("keyframes", film, "-o", out)
    assert r.exit_code == 2 and painted.read_bytes() == before
    assert error_lines(r) == [f"vidcolor: error: {out} already holds keyframe images (000000.png); they may be "
                              "coloured already: choose another folder, or replace them with --force"]
    r = invoke("keyframes", film, "-o", out, "--force")
    assert r.exit_code == 0 and painted.read_bytes() != before


@pytest.mark.parametrize("make, extra, code, message", [
    (lambda d: d / "missing.mp4", [], 2, "missing.mp4: no such file"),
    (lambda d: written(d / "empty.mp4", b""), [], 2, "empty.mp4"),
    (lambda d: written(d / "junk.mp4", b"not a video" * 100), [], 2, "junk.mp4"),
    (None, ["--every", "0"], 2, "Invalid value for '--every'"),
    (None, ["--every", "-3"], 2, "Invalid value for '--every'"),
])
def test_bad_input_is_one_line(film, tmp_path, make, extra, code, message) -> None:
    src = film if make is None else make(tmp_path)
    r = invoke("keyframes", src, "-o", tmp_path / "kf", *extra)
    lines = error_lines(r)
    assert r.exit_code == code and len(lines) == 1 and lines[0].startswith("vidcolor: error: "), r.output
    assert message in lines[0] and "Traceback" not in r.output
    assert not (tmp_path / "kf").exists()


def test_output_that_is_a_file_is_an_error_with_json(film, tmp_path) -> None:
    target = tmp_path / "taken"
    target.write_text("x")
    r = invoke("keyframes", film, "-o", target, "--json")
    assert r.exit_code == 2
    assert json.loads(r.stdout) == {"error": f"{target}: exists and is not a folder", "exit_code": 2}


def test_listed_in_help() -> None:
    r = invoke("--help")
    assert r.exit_code == 0 and "keyframes" in r.output
