"""CPU-only variants of frameworks, preferred for targets without a GPU.

``xgboost`` 2.1+ on Linux pulls ``nvidia-nccl-cu12`` (468 MB) for multi-GPU training;
``xgboost-cpu`` is the same ``xgboost`` module without it, published for the same
versions. Function targets (Lambda, Azure Functions) and the CPU containers (Cloud Run,
SageMaker's CPU instances) install the CPU variant, and the build notes say so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

CPU_VARIANTS = {"xgboost": "xgboost-cpu"}
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(.*)$", re.DOTALL)


def prefer_cpu(requirements: Sequence[str]) -> tuple[list[str], tuple[str, ...]]:
    """``requirements`` with each framework that has a CPU-only variant swapped for it
    (same version specifier), and one note per swap."""
    out: list[str] = []
    notes: list[str] = []
    for requirement in requirements:
        match = _NAME.match(requirement)
        name = re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else ""
        variant = CPU_VARIANTS.get(name)
        if match is None or variant is None:
            out.append(requirement)
            continue
        out.append(f"{variant}{match.group(2)}")
        notes.append(
            f"{match.group(1)} installed as {variant} (the same module without the CUDA "
            "libraries, which this CPU-only target cannot use)"
        )
    return out, tuple(notes)
