"""GAN generators, the weights registry, our weights format and importers.

Heavy modules (torch) load on first use of a name here, so ``import vidcolor.models`` stays cheap.

* architectures: :mod:`vidcolor.models.networks`, :mod:`vidcolor.models.zhang`; by name via
  :data:`MODELS` / :func:`build_model` (:mod:`vidcolor.models.registry`)
* named weights: :data:`WEIGHTS` (:mod:`vidcolor.models.weights`)
* folders: :func:`save_pretrained`, :func:`load_pretrained` (:mod:`vidcolor.models.pretrained`)
* foreign checkpoints: :func:`import_checkpoint`, :func:`pull_weights` (:mod:`vidcolor.models.importers`)
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "MODELS": "registry", "build_model": "registry", "register_model": "registry", "count_params": "registry",
    "WEIGHTS": "weights", "WeightsEntry": "weights",
    "save_pretrained": "pretrained", "load_pretrained": "pretrained", "resolve_weights": "pretrained",
    "import_checkpoint": "importers", "pull_weights": "importers", "load_checkpoint": "convert",
    "download": "hub",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'vidcolor.models' has no attribute {name!r}")
    return getattr(importlib.import_module(f"vidcolor.models.{_EXPORTS[name]}"), name)
