"""pipelines/ and training/ install as vidcolor.pipelines / vidcolor.training, never top-level."""

import subprocess
import sys


def test_import_names(tmp_path):
    code = ("import importlib.util as u; "
            "assert u.find_spec('vidcolor.pipelines') and u.find_spec('vidcolor.training'); "
            "assert u.find_spec('training') is None, 'top-level training module'; "
            "assert u.find_spec('pipelines') is None, 'top-level pipelines module'; "
            "import vidcolor.configs, importlib.resources as r; "
            "assert r.files('vidcolor.configs').joinpath('styles/noir.toml').is_file()")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
