"""Bundles: resolve, install and package a model with exactly what it needs.

The shared cache (locks and environments, keyed by content hashes) lives under
``cache_dir()``: ``$SLML_CACHE_DIR``, else ``$XDG_CACHE_HOME/slml``, else
``~/.cache/slml``.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The cache root (not created here). Safe to delete: everything in it is rebuilt."""
    explicit = os.environ.get("SLML_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "slml"
    return Path.home() / ".cache" / "slml"
