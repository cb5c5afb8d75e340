"""``RunSettings``: built once from the CLI options by ``make_settings``, frozen, picklable, and the one
place where an unknown option or one the style does not read is refused."""

from __future__ import annotations

import dataclasses
import pickle

import pytest
from click.testing import CliRunner

from tests.conftest import make_clip
from vidcolor.cli import main
from vidcolor.errors import InputError
from vidcolor.settings import EncoderSettings, RunSettings, make_settings


@pytest.fixture
def captured(monkeypatch):
    """Calls of ``make_settings`` and the settings the pipelines receive, with no video processed."""
    import vidcolor.settings
    from vidcolor.pipelines import batch, run
    from vidcolor.pipelines.report import RunReport

    seen: dict[str, list] = {"built": [], "run": [], "batch": []}
    real = vidcolor.settings.make_settings

    def counting(*args, **kwargs):
        seen["built"].append(real(*args, **kwargs))
        return seen["built"][-1]

    def fake_run(input_path, output_path, settings, **kwargs):
        seen["run"].append(settings)
        return RunReport(str(input_path), str(output_path), settings.style.name, 0, 0.0, 0.0, "pyav", "x", "cpu")

    def fake_batch(input_dir, output_dir, settings, **kwargs):
        seen["batch"].append(settings)
        return batch.BatchReport(str(input_dir), str(output_dir), "m", "local", "h")

    monkeypatch.setattr(vidcolor.settings, "make_settings", counting)
    monkeypatch.setattr(run, "run", fake_run)
    monkeypatch.setattr(batch, "run_batch", fake_batch)
    return seen


OPTIONS = ["--style", "colorize", "--temporal", "0.5", "--flow", "dis", "--render-size", "64", "--crf", "20",
           "-e", "preset=slow", "--chunk-size", "8", "--device", "cpu", "--allow-truncated"]


def test_run_and_batch_build_the_same_settings_once(captured, tmp_path):
    clip = make_clip(tmp_path / "c.mp4", frames=2)
    r = CliRunner().invoke(main, ["-q", "run", str(clip), "-o", str(tmp_path / "o.mp4"), *OPTIONS])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["-q", "batch", str(tmp_path), "-o", str(tmp_path / "out"), *OPTIONS])
    assert r.exit_code == 0, r.output
    assert len(captured["built"]) == 2  # once per command
    [run_settings], [batch_settings] = captured["run"], captured["batch"]
    assert run_settings is captured["built"][0] and batch_settings is captured["built"][1]
    assert run_settings == batch_settings
    s = run_settings
    assert s.style.name == "colorize" and dict(s.overrides) == {"temporal": 0.5, "flow": "dis", "render_size": 64}
    assert s.encoder == EncoderSettings(backend="pyav", codec="libx264", crf=20, options={"preset": "slow"})
    assert (s.device, s.chunk_size, s.allow_truncated, s.resumable, s.fresh) == ("cpu", 8, True, None, False)


def test_settings_are_frozen_and_pickle():
    s = make_settings("sepia", codec="ffv1", encoder_options={"level": "3"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.chunk_size = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.encoder.crf = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.encoder.options["level"] = "4"  # type: ignore[index]
    with pytest.raises(TypeError):
        s.overrides["temporal"] = 0.1  # type: ignore[index]
    again = pickle.loads(pickle.dumps(s))  # as batch workers and Ray tasks get them
    assert again == s and isinstance(again, RunSettings) and dict(again.encoder.options) == {"level": "3"}


def test_the_style_is_resolved_once_and_a_runsettings_passes_through():
    s = make_settings("noir")
    assert s.style.name == "noir" and make_settings(s) is s
    with pytest.raises(TypeError, match="unexpected options codec"):
        make_settings(s, codec="ffv1")


def test_unknown_and_inapplicable_options_are_refused_here():
    with pytest.raises(TypeError, match="unknown option.*bogus"):
        make_settings("noir", bogus=1)
    with pytest.raises(InputError, match="--flow does not apply to style 'noir'"):
        make_settings("noir", flow="dis")
    with pytest.raises(InputError, match="--temporal does not apply to style 'sepia'"):
        make_settings("sepia", temporal=0.5)
    with pytest.raises(InputError, match="unknown style 'nope'"):
        make_settings("nope")
    with pytest.raises(InputError, match="unknown encoder 'gst'"):
        make_settings("noir", encoder="gst")
    assert dict(make_settings("colorize", flow="raft_small", temporal=0.0).overrides) == {
        "flow": "raft_small", "temporal": 0.0}  # 0 is a value (stabilizer off), not "not asked"


def test_flow_option_matches_the_estimators_and_goes_through_the_style_check(tmp_path):
    from vidcolor.cli.common import FLOW_CHOICES
    from vidcolor.flow import FLOW_CHOICES as ESTIMATORS

    assert FLOW_CHOICES == ESTIMATORS
    clip = make_clip(tmp_path / "c.mp4", frames=2)
    r = CliRunner().invoke(main, ["run", str(clip), "--style", "noir", "--flow", "dis"])
    assert r.exit_code == 2 and "--flow does not apply to style 'noir'" in r.output
    r = CliRunner().invoke(main, ["run", str(clip), "--style", "colorize", "--flow", "farneback"])
    assert r.exit_code == 2 and "--flow" in r.output


def test_signature_keys_are_the_manifests():
    """Batch manifests and work folders hash this dict: its keys must not change."""
    sig = make_settings("noir").signature()
    assert set(sig) == {"style", "stages", "overrides", "encoder", "codec", "crf", "pix_fmt", "encoder_options"}
    assert sig["encoder"] == "pyav" and sig["encoder_options"] == {} and sig["crf"] == 18


def test_precision_choices_are_the_runtimes_and_reach_the_model_stage(tmp_path):
    from vidcolor.cli.common import PRECISION_CHOICES
    from vidcolor.models.runtime import PRECISIONS

    assert PRECISION_CHOICES == PRECISIONS
    s = make_settings("colorize", precision="fp32")
    assert s.overrides["precision"] == "fp32"
    with pytest.raises(InputError, match="--precision does not apply to style 'noir'"):
        make_settings("noir", precision="bf16")


def test_path_options_are_given_as_strings_to_the_stages(tmp_path) -> None:
    """The Python API takes ``pathlib.Path`` for file options (keyframes, hints, lut) like the CLI's strings."""
    from vidcolor.settings import make_settings

    s = make_settings("colorize", keyframes=tmp_path, hints=tmp_path / "h.json")
    assert s.overrides["keyframes"] == str(tmp_path) and s.overrides["hints"] == str(tmp_path / "h.json")
