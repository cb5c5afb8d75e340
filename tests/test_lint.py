"""The rule set in pyproject.toml ([tool.ruff.lint]) holds for the whole repository."""

import importlib.util
import subprocess
import sys

import pytest

from tests.conftest import REPO


def test_ruff_finds_nothing():
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed (it comes with the dev lock: bin/test installs it)")
    res = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=REPO,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
