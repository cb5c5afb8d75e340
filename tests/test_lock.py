"""requirements-*.txt (made by bin/lock) agree with pyproject.toml, and the venv has what its lock says."""

from __future__ import annotations

import re
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
DEV_ONLY = {"pytest", "ruff", "ray", "hypothesis", "scikit-image", "matplotlib"}


def pyproject_requirements(extras: tuple[str, ...] = ()) -> list[Requirement]:
    """pyproject.toml's runtime requirements plus those of ``extras``, without extras of their own."""
    with open(REPO / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    return [Requirement(s) for s in lines]


def lock_lines(text: str) -> list[str]:
    """The requirement lines of a pip-compile output: continuations joined, comments and options dropped."""
    out = []
    for line in text.replace("\\\n", " ").splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def parse_lock(text: str) -> dict[str, Requirement]:
    """{canonical name: requirement}; asserts every line is an exact ``name==version`` pin (hashes allowed)."""
    pins: dict[str, Requirement] = {}
    for line in lock_lines(text):
        assert not line.startswith("-"), f"option line in the lock: {line}"
        spec, *options = re.split(r"\s+(?=--)", line)
        assert all(o.startswith("--hash=sha256:") for o in options), f"unexpected option: {line}"
        req = Requirement(spec)
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version, \
            f"not an exact == pin: {line}"
        name = canonicalize_name(req.name)
        assert name not in pins, f"{name} pinned twice"
        pins[name] = req
    return pins


def load_lock(which: str) -> dict[str, Requirement]:
    return parse_lock((REPO / f"requirements-{which}.txt").read_text())


def missing_or_wrong(reqs: list[Requirement], pins: dict[str, Requirement]) -> list[str]:
    """Requirements (those whose marker holds here) that the lock lacks or pins outside their specifier."""
    bad = []
    for req in reqs:
        if req.marker is not None and not req.marker.evaluate():
            continue
        pin = pins.get(canonicalize_name(req.name))
        if pin is None:
            bad.append(f"{req}: not in the lock")
            continue
        v = next(iter(pin.specifier)).version
        if not req.specifier.contains(v, prereleases=True):
            bad.append(f"{req}: locked at {v}")
    return bad


def installed_mismatches(pins: dict[str, Requirement]) -> list[str]:
    """Pins (whose marker holds here) that the running interpreter does not have at that exact version."""
    wrong = []
    for name, pin in pins.items():
        if pin.marker is not None and not pin.marker.evaluate():
            continue
        want = next(iter(pin.specifier)).version
        try:
            have = version(name)
        except PackageNotFoundError:
            have = None
        if have != want:
            wrong.append(f"{name}: installed {have}, locked {want}")
    return wrong


@pytest.mark.parametrize("which,extras", [("runtime", ()), ("dev", ("dev",))])
def test_lock_satisfies_pyproject(which, extras):
    bad = missing_or_wrong(pyproject_requirements(extras), load_lock(which))
    assert not bad, f"requirements-{which}.txt disagrees with pyproject.toml (run bin/lock): {bad}"


def test_runtime_lock_has_no_dev_tools_and_matches_dev_lock():
    runtime, dev = load_lock("runtime"), load_lock("dev")
    assert not DEV_ONLY & set(runtime), f"dev-only packages in requirements-runtime.txt: {DEV_ONLY & set(runtime)}"
    assert "vidcolor" not in runtime and "vidcolor" not in dev
    differ = {n: (str(r.specifier), str(dev[n].specifier) if n in dev else None)
              for n, r in runtime.items() if n not in dev or str(dev[n].specifier) != str(r.specifier)}
    assert not differ, f"runtime and dev locks pin these differently (run bin/lock): {differ}"


def test_parse_lock_rejects_loose_lines():
    assert set(parse_lock("a==1.0 \\\n    --hash=sha256:ab\nb==2 ; python_version >= '3'\n")) == {"a", "b"}
    for bad in ("a>=1.0\n", "a\n", "a==1.*\n", "a==1\na==2\n", "-e .\n", "a==1 --index-url x\n"):
        with pytest.raises(AssertionError):
            parse_lock(bad)
    pins = parse_lock("numpy==2.4.6\n")
    assert missing_or_wrong([Requirement("numpy>=1.24,<3")], pins) == []
    assert missing_or_wrong([Requirement("numpy<2")], pins) == ["numpy<2: locked at 2.4.6"]
    assert missing_or_wrong([Requirement("av>=14")], pins) == ["av>=14: not in the lock"]
    assert missing_or_wrong([Requirement("tomli>=2; python_version < '3'")], pins) == []
    have = version("packaging")
    assert installed_mismatches(parse_lock(f"packaging=={have}\n")) == []
    assert installed_mismatches(parse_lock("packaging==0.0.1\nno-such-pkg-x==1\n")) == [
        f"packaging: installed {have}, locked 0.0.1", "no-such-pkg-x: installed None, locked 1"]


def test_installed_versions_equal_the_lock():
    stamp = Path(sys.prefix) / ".vidcolor-installed"
    if not stamp.is_file():
        pytest.skip(f"{sys.prefix} was not made by bin/vidcolor or bin/test: no lock to compare with")
    which = stamp.read_text().split()[0]
    if which in ("latest", "with"):
        pytest.skip(f"running in the bin/test --{which} venv: its versions are deliberately not the lock's")
    if which not in ("runtime", "dev"):
        pytest.skip(f"{sys.prefix} was installed without a lock (old stamp); bin/test reinstalls it from one")
    wrong = installed_mismatches(load_lock(which))
    assert not wrong, f"{sys.prefix} differs from requirements-{which}.txt (bin/test reinstalls it): {wrong}"
