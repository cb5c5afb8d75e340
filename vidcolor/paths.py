"""Where vidcolor keeps its own files: one home folder for the weights cache and user styles.

A module of its own, importing nothing of vidcolor's, so the flow, model and style modules can all
use it without importing each other."""

from __future__ import annotations

import os
from pathlib import Path


def home_dir() -> Path:
    """``$VIDCOLOR_HOME`` or the platform cache folder (weights cache, user styles)."""
    env = os.environ.get("VIDCOLOR_HOME")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("vidcolor"))
