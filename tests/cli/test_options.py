"""The CLI never ignores what it was asked: options that do not apply to the style are errors, -q/-v
work after the subcommand, ``--json -`` is stdout, failures with --json print a JSON error, and every
error is one line ``vidcolor: error: MESSAGE`` with the prefix once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from tests.conftest import make_clip
from vidcolor.cli import main
from vidcolor.cli.common import error_text, handle_errors
from vidcolor.errors import ProcessingError


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "in.mp4", frames=4, width=64, height=48, audio=False)


def invoke(*args: str) -> click.testing.Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def error_lines(r: click.testing.Result) -> list[str]:
    return [ln for ln in r.stderr.splitlines() if ln.strip()]


def test_quiet_and_verbose_work_after_the_subcommand(clip, tmp_path) -> None:
    out = tmp_path / "o.mp4"
    r = invoke("run", clip, "-o", out, "-q")
    assert r.exit_code == 0 and r.stderr == "" and out.is_file(), r.output
    r = invoke("run", clip, "-o", out, "--overwrite")  # the next invocation is not quiet any more
    assert r.exit_code == 0 and "frames in" in r.stderr, r.output
    r = invoke("run", tmp_path / "missing.mp4", "-v")
    assert r.exit_code == 2 and "Traceback" in r.stderr and "missing.mp4: no such file" in r.stderr
    r = invoke("models", "list", "--json", "-q")
    assert r.exit_code == 0 and isinstance(json.loads(r.stdout), list), r.output


@pytest.mark.parametrize("style,option,message", [
    ("sepia", "--lut", ("--lut does not apply to style 'sepia' (its stages: grade); it applies to styles "
                        'with a grade stage with preset = "lut" (the lut style)')),
    ("noir", "--temporal", ("--temporal does not apply to style 'noir' (its stages: grade); it applies to "
                            "styles with a colorize stage that sets temporal or a stabilize stage")),
    ("sepia", "--weights", ("--weights does not apply to style 'sepia' (its stages: grade); it applies to "
                            "styles with a colorize stage or a stylize stage")),
    ("noir", "--render-size", "--render-size does not apply to style 'noir'"),
    ("noir", "--compile", "--compile does not apply to style 'noir'"),
])
def test_options_that_do_not_apply_are_errors(clip, tmp_path, style, option, message) -> None:
    cube = tmp_path / "id.cube"
    rows = [f"{r} {g} {b}" for b in (0, 1) for g in (0, 1) for r in (0, 1)]
    cube.write_text("LUT_3D_SIZE 2\n" + "\n".join(rows))
    value = {"--lut": [cube], "--temporal": ["0.5"], "--weights": ["colorize"], "--render-size": ["64"],
             "--compile": []}[option]
    out = tmp_path / "o.mp4"
    for extra in ([], ["--resumable"]):  # the resumable path builds the style too
        r = invoke("run", clip, "--style", style, option, *value, "-o", out, *extra)
        assert r.exit_code == 2, r.output
        lines = error_lines(r)
        assert len(lines) == 1 and lines[0].startswith(f"vidcolor: error: {message}")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["id.cube"]  # nothing written
    r = invoke("batch", clip.parent, "-o", tmp_path / "out", "--style", style, option, *value)
    assert r.exit_code == 2 and message in r.stderr and not (tmp_path / "out").exists(), r.output


def test_lut_style_without_a_lut_is_still_a_clear_error(clip, tmp_path) -> None:
    r = invoke("run", clip, "--style", "lut", "-o", tmp_path / "o.mp4")
    assert r.exit_code == 2, r.output
    assert error_lines(r) == ["vidcolor: error: the lut style needs a LUT file: pass --lut FILE.cube"]


def test_bad_style_values_name_the_file_and_key(clip, tmp_path) -> None:
    style = tmp_path / "my.toml"
    style.write_text('[[stages]]\ntype = "grade"\npreset = "noir"\ncontrast = nan\n')
    r = invoke("run", clip, "--style", style, "-o", tmp_path / "o.mp4")
    assert r.exit_code == 2
    assert error_lines(r) == [(f"vidcolor: error: {style}: [[stages]] 1 (grade): contrast must be a finite "
                              "number in [0, 20], got nan")]
    style.write_text('[[stages]]\ntype = "colorize"\nrender_size = 1e8\n')
    r = invoke("run", clip, "--style", style, "-o", tmp_path / "o.mp4")
    assert r.exit_code == 2 and "render_size must be an integer, got 100000000.0" in r.stderr, r.output


def test_eval_json_dash_is_stdout(clip, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    r = invoke("eval", clip, "--source", clip, "--json", "-")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["frames"] == 4
    assert "warping error" in r.stderr  # the table moves to stderr
    assert not (tmp_path / "-").exists()
    r = invoke("eval", clip, "--source", clip, "--json", "r.json", "-q")
    assert r.exit_code == 0 and json.loads((tmp_path / "r.json").read_text())["frames"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]


@pytest.mark.parametrize("args,code,message", [
    (["probe", "{missing}", "--json"], 2, "{missing}: no such file"),
    (["run", "{missing}", "--json"], 2, "{missing}: no such file"),
    (["run", "{clip}", "--json", "--style", "noir", "--temporal", "0.5"], 2, "--temporal does not apply"),
    (["run", "{clip}", "--crf", "99", "--json"], 2, "Invalid value for '--crf'"),  # a click usage error
    (["eval", "{missing}", "--source", "{clip}", "--json", "-"], 2, "{missing}: no such file"),
    (["models", "info", "nope", "--json"], 2, "unknown weights 'nope'"),
    (["styles", "--json", "--bogus"], 2, "No such option"),
])
def test_failures_with_json_print_a_json_error(clip, tmp_path, args, code, message) -> None:
    missing = tmp_path / "missing.mp4"
    r = invoke(*[a.format(missing=missing, clip=clip) for a in args])
    assert r.exit_code == code, r.output
    err = json.loads(r.stdout)
    assert set(err) == {"error", "exit_code"} and err["exit_code"] == code
    assert message.format(missing=missing) in err["error"]
    assert error_lines(r) == [f"vidcolor: error: {err['error']}"]


def test_no_json_error_on_stdout_without_json_on_stdout(clip, tmp_path) -> None:
    r = invoke("eval", tmp_path / "missing.mp4", "--source", clip, "--json", tmp_path / "r.json")
    assert r.exit_code == 2 and r.stdout == "" and not (tmp_path / "r.json").exists()
    r = invoke("probe", tmp_path / "missing.mp4")
    assert r.exit_code == 2 and r.stdout == ""


@click.command()
@click.argument("kind")
@handle_errors
def fail(kind: str) -> None:
    if kind == "prefixed":
        raise ProcessingError("error: Error: encoder gave up\n  on frame 3")
    if kind == "disk":
        raise OSError(28, "No space left on device", "out.mp4")
    if kind == "opencv":  # cv2.error: class name "error", message "OpenCV(...) file:line: error: ...\n"
        import cv2
        import numpy as np

        cv2.resize(np.zeros((0, 0), np.uint8), (2, 2))
    raise RuntimeError("a bug")


@pytest.mark.parametrize("kind,line,code", [
    ("prefixed", "vidcolor: error: encoder gave up on frame 3", 1),
    ("disk", "vidcolor: error: out.mp4: No space left on device", 1),
    ("bug", "vidcolor: error: RuntimeError: a bug (run with -v for the traceback)", 1),
    ("opencv", "vidcolor: error: cv2.error: OpenCV(", 1),
])
def test_every_error_is_one_line_with_the_prefix_once(kind, line, code) -> None:
    r = CliRunner().invoke(fail, [kind])
    lines = error_lines(r)
    assert r.exit_code == code and len(lines) == 1, r.output
    assert lines[0].startswith(line) if kind == "opencv" else lines[0] == line
    assert lines[0].count("vidcolor: error:") == 1 and "error: error" not in lines[0]


def test_error_text() -> None:
    assert error_text("vidcolor: error: error: x") == "x"
    assert error_text("Error opening output files: Encoder not found") == \
        "Error opening output files: Encoder not found"  # not a prefix: kept
    assert error_text("a\nb\t c") == "a b c"


def test_click_usage_errors_are_one_line(clip) -> None:
    r = invoke("run", clip, "--bogus")
    assert r.exit_code == 2
    lines = error_lines(r)
    assert len(lines) == 1 and lines[0].startswith("vidcolor: error: No such option '--bogus'")
    assert "run --help`)" in lines[0]
    r = invoke("run", clip, "--pix-fmt", "bogus")  # was "ValueError: not a pixel format" from the writer
    assert r.exit_code == 2 and error_lines(r)[0].startswith(
        "vidcolor: error: Invalid value for '--pix-fmt': unknown pixel format 'bogus'"), r.output
    r = invoke("nosuchcommand")
    assert r.exit_code == 2
    assert error_lines(r)[0].startswith("vidcolor: error: No such command 'nosuchcommand'")


def test_subcommand_help_is_torch_free_and_lists_quiet() -> None:
    code = ("import sys; from click.testing import CliRunner; from vidcolor.cli import main; "
            "r = CliRunner().invoke(main, ['run', '--help']); assert r.exit_code == 0, r.output; "
            "assert '--quiet' in r.output; assert 'torch' not in sys.modules, 'run --help imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True)
