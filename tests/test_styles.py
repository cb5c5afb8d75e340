"""Styles: every value of every stage table is type- and range-checked with the file, stage and key
named; unknown keys are refused; an override that no stage of the style reads is an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidcolor.errors import InputError
from vidcolor.stages import StageContext, build_stage
from vidcolor.styles import available_styles, get_style, load_style_file


def style_file(tmp_path: Path, body: str, name: str = "my.toml") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


@pytest.mark.parametrize("name", sorted(available_styles()))
def test_every_builtin_style_passes_the_checks(name: str) -> None:
    get_style(name).check()


@pytest.mark.parametrize("table,key,rule", [
    ('type = "grade"\ncontrast = nan', "contrast", "must be a finite number in [0, 20], got nan"),
    ('type = "grade"\ngrain = inf', "grain", "must be a finite number in [0, 1], got inf"),
    ('type = "grade"\ncontrast = 1e999', "contrast", "got inf"),
    ('type = "grade"\ncontrast = 25.0', "contrast", "must be in [0, 20], got 25.0"),
    ('type = "grade"\ncontrast = "high"', "contrast", "must be a number, got 'high'"),
    ('type = "grade"\nvignette = true', "vignette", "must be a number, got true"),
    ('type = "grade"\nseed = 1.5', "seed", "must be an integer, got 1.5"),
    ('type = "grade"\nseed = -1', "seed", "must be in [0, 4294967295], got -1"),
    ('type = "grade"\ntint = [1.0, 0.5]', "tint", "must be a list of three numbers"),
    ('type = "grade"\ntint = [1.0, nan, 0.5]', "tint", "finite"),
    ('type = "grade"\npreset = "film"', "preset", "must be one of noir, sepia, lut, none, got 'film'"),
    ('type = "grade"\nlut = 3', "lut", "must be a string, got 3"),
    ('type = "colorize"\nrender_size = 1e8', "render_size", "must be an integer, got 100000000.0"),
    ('type = "colorize"\nrender_size = 100000000', "render_size", "must be in [8, 4096], got 100000000"),
    ('type = "colorize"\ntemporal = nan', "temporal", "must be a finite number in [0, 1], got nan"),
    ('type = "colorize"\nflip_tta = 1', "flip_tta", "must be true or false, got 1"),
    ('type = "colorize"\nprecision = "fp8"', "precision", "must be one of auto, fp32, fp16, bf16"),
    ('type = "colorize"\nbatch_size = 0', "batch_size", "must be in [1, 256], got 0"),
    ('type = "stylize"\nweights = 5', "weights", "must be a string, got 5"),
    ('type = "stylize"\ndetail = -inf', "detail", "got -inf"),
    ('type = "stabilize"\nscene_cut = 0', "scene_cut", "must be in (0, 1], got 0"),
    ('type = "stabilize"\nmode = "lab"', "mode", "must be one of auto, ab, rgb"),
    ('type = "stabilize"\nflow_size = 100000', "flow_size", "must be in [16, 4096]"),
])
def test_bad_values_name_the_file_stage_and_key(tmp_path, table, key, rule) -> None:
    path = style_file(tmp_path, '[[stages]]\ntype = "grade"\n\n[[stages]]\n' + table + "\n")
    kind = table.split('"')[1]
    with pytest.raises(InputError) as err:
        load_style_file(path).check()
    message = str(err.value)
    assert message.startswith(f"{path}: [[stages]] 2 ({kind}): {key} must be ") and rule in message, message


def test_unknown_keys_and_types_are_refused_by_name(tmp_path) -> None:
    path = style_file(tmp_path, '[[stages]]\ntype = "grade"\ncontrst = 2.0\n')
    with pytest.raises(InputError, match=r"my.toml: \[\[stages\]\] 1 \(grade\): unknown key 'contrst' \("):
        load_style_file(path).check()
    path = style_file(tmp_path, '[[stages]]\ntype = "grade"\ndevice = "cuda"\n')
    with pytest.raises(InputError, match="unknown key 'device'"):
        load_style_file(path).check()
    path = style_file(tmp_path, '[[stages]]\ntype = "grayde"\n')
    with pytest.raises(InputError, match=r"my.toml: \[\[stages\]\] 1: unknown stage type 'grayde'"):
        load_style_file(path).check()


def test_build_checks_before_building(tmp_path) -> None:
    """``Style.build`` (what run, resumable runs and batch workers call) refuses the style."""
    path = style_file(tmp_path, '[[stages]]\ntype = "grade"\ncontrast = nan\n')
    with pytest.raises(InputError, match="contrast must be a finite number"):
        load_style_file(path).build(StageContext())


def test_build_stage_checks_tables_and_overrides() -> None:
    with pytest.raises(InputError, match=r"stage 'grade': grain must be a finite number in \[0, 1\]"):
        build_stage({"type": "grade", "grain": float("inf")}, StageContext())
    # an override a stage reads obeys the table's range (the Python API has no click ranges)
    with pytest.raises(InputError, match=r"stage 'colorize': render_size must be in \[8, 4096\]"):
        build_stage({"type": "colorize", "temporal": 0.5}, StageContext(overrides={"render_size": 10**8}))


@pytest.mark.parametrize("style,overrides,message", [
    ("sepia", {"lut": "x.cube"}, ("--lut does not apply to style 'sepia' (its stages: grade); it applies to "
                                 'styles with a grade stage with preset = "lut" (the lut style)')),
    ("noir", {"temporal": 0.5}, ("--temporal does not apply to style 'noir' (its stages: grade); it applies "
                                "to styles with a colorize stage that sets temporal or a stabilize stage")),
    ("noir", {"temporal": 0}, "--temporal does not apply"),
    ("sepia", {"weights": "colorize"}, "--weights does not apply to style 'sepia'"),
    ("noir", {"render_size": 256}, "--render-size does not apply to style 'noir'"),
    ("noir-grain", {"compile": True}, "--compile does not apply to style 'noir-grain'"),
    ("colorize", {"lut": "x.cube"}, "--lut does not apply to style 'colorize' (its stages: colorize)"),
])
def test_overrides_no_stage_reads_are_errors(style, overrides, message) -> None:
    with pytest.raises(InputError) as err:
        get_style(style).check(overrides)
    assert str(err.value).startswith(message), err.value
    with pytest.raises(InputError, match="does not apply"):
        get_style(style).build(StageContext(overrides=overrides))


@pytest.mark.parametrize("style,overrides", [
    ("lut", {"lut": "x.cube"}),
    ("colorize", {"temporal": 0.3, "weights": "w", "render_size": 64, "compile": True}),
    ("style-monet", {"temporal": 0.2, "render_size": 256, "weights": "w"}),  # stylize + stabilize
    ("noir", {"compile": False, "lut": None}),  # False / None: not asked for
])
def test_overrides_that_apply_pass(style, overrides) -> None:
    get_style(style).check(overrides)


def test_temporal_needs_a_stabilizer_in_the_style(tmp_path) -> None:
    """A colorize stage stabilizes (and reads --temporal) only when its table sets temporal."""
    plain = load_style_file(style_file(tmp_path, '[[stages]]\ntype = "colorize"\n'))
    with pytest.raises(InputError, match="--temporal does not apply to style 'my'"):
        plain.check({"temporal": 0.5})
    plain.check({"render_size": 64})
    both = style_file(tmp_path, '[[stages]]\ntype = "colorize"\n[[stages]]\ntype = "stabilize"\n')
    load_style_file(both).check({"temporal": 0.5})
