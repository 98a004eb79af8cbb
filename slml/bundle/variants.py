"""CPU-only variants of frameworks, preferred for targets without a GPU.

``xgboost`` 2.1+ on Linux pulls ``nvidia-nccl-cu12`` (468 MB) for multi-GPU training;
``xgboost-cpu`` is the same ``xgboost`` module without it, published for the same
versions. Function targets (Lambda, Azure Functions) and the CPU containers (Cloud Run,
SageMaker's CPU instances) install the CPU variant, and the build notes say so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from slml.errors import ArtifactError, ConfigError

CPU_VARIANTS = {"xgboost": "xgboost-cpu"}
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)(.*)$", re.DOTALL)


def model_requirements(
    manifest: dict[str, Any], changes: Any = None, *, cpu: bool
) -> tuple[list[str], tuple[str, ...]]:
    """The artifact's requirements after slml.yaml's ``requirements:`` (``changes``, a
    RequirementsConfig) and, for a CPU-only target (``cpu``), the CPU variants; with a
    note per change. Raises ConfigError naming a removed/replaced name not there."""
    from slml.artifact.requirements import adjust, requirement_name

    derived = list(manifest.get("requirements") or [])
    notes: tuple[str, ...] = ()
    chosen: set[str] = set()
    if changes is not None and (changes.add or changes.remove or changes.replace):
        try:
            derived = adjust(
                derived, add=changes.add, remove=changes.remove, replace=changes.replace
            )
        except ArtifactError as exc:
            raise ConfigError(f"requirements: {exc.message}") from None
        chosen = {requirement_name(r) for r in [*changes.add, *changes.replace.values()]}
        notes = (f"requirements changed by slml.yaml: {_describe(changes)}",)
    if not cpu:
        return derived, notes
    swapped, cpu_notes = prefer_cpu(derived, keep=chosen)
    return swapped, notes + cpu_notes


def keeps_sources(changes: Any = None) -> bool:
    """Whether slml.yaml's ``requirements:`` (``changes``, a RequirementsConfig or None)
    asks every installed module to ship its source (``source_code: keep``), so library
    frames of a traceback show their lines; else the modules a cold start reads ship as
    bytecode only (bytecode_only.py)."""
    return getattr(changes, "source_code", "auto") == "keep"


def keeps_symbols(changes: Any = None) -> bool:
    """Whether slml.yaml's ``requirements:`` (``changes``, a RequirementsConfig or None)
    asks the installed shared libraries to keep their symbol tables and debug info
    (``symbols: keep``); else elf_strip.py drops them."""
    return getattr(changes, "symbols", "strip") == "keep"


def _describe(changes: Any) -> str:
    parts = [f"removed {', '.join(changes.remove)}"] if changes.remove else []
    parts += [f"{old} → {new}" for old, new in changes.replace.items()]
    parts += [f"added {', '.join(changes.add)}"] if changes.add else []
    return "; ".join(parts)


def prefer_cpu(
    requirements: Sequence[str], *, keep: set[str] | frozenset[str] = frozenset()
) -> tuple[list[str], tuple[str, ...]]:
    """``requirements`` with each framework that has a CPU-only variant swapped for it
    (same version specifier), except the names in ``keep`` (chosen by the user), and
    one note per swap."""
    out: list[str] = []
    notes: list[str] = []
    for requirement in requirements:
        match = _NAME.match(requirement)
        name = re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else ""
        variant = CPU_VARIANTS.get(name)
        if match is None or variant is None or name in keep:
            out.append(requirement)
            continue
        out.append(f"{variant}{match.group(2)}")
        notes.append(
            f"{match.group(1)} installed as {variant} (the same module without the CUDA "
            "libraries, which this CPU-only target cannot use)"
        )
    return out, tuple(notes)
