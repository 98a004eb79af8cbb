"""Sizes in words, one way everywhere: ``MB`` is 1024 * 1024 bytes, as every size limit
slml checks (Lambda's 250 MB, a 6 MB request body) is counted. Bottom floor: imports
nothing of slml."""

from __future__ import annotations

KB = 1024
MB = 1024 * KB
GB = 1024 * MB


def human(size: float | None) -> str:
    """``512 B``, ``1.5 KB``, ``123.4 MB``, ``2.0 GB``; ``-`` for None (not measured)."""
    if size is None:
        return "-"
    for unit, scale in (("GB", GB), ("MB", MB), ("KB", KB)):
        if abs(size) >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size:.0f} B"


def megabytes(size: float) -> str:
    """Always in MB (``0.3 MB``), for lists whose entries are compared with each other."""
    return f"{size / MB:.1f} MB"
