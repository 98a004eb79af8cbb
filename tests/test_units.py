"""One size format: binary units, the unit chosen by size, '-' for unmeasured."""

from __future__ import annotations

import pytest

from slml.units import GB, KB, MB, human, megabytes


@pytest.mark.parametrize(
    ("size", "words"),
    [(None, "-"), (0, "0 B"), (512, "512 B"), (KB, "1.0 KB"), (1536, "1.5 KB"),
     (250 * MB, "250.0 MB"), (int(2.5 * GB), "2.5 GB"), (7.0, "7 B")],
)  # fmt: skip
def test_human(size, words):
    assert human(size) == words


def test_megabytes_is_always_mb():
    assert megabytes(300 * KB) == "0.3 MB" and megabytes(3 * GB) == "3072.0 MB"
