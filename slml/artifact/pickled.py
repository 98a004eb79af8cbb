"""What a pickle refers to: the modules named by its GLOBAL / STACK_GLOBAL opcodes.

Those names are exactly what ``pickle.load`` will import in the serving runtime, so
they, and not the Python types of the objects in memory (a Cython function's type lives
in a pseudo-module such as ``_cython_3_2_4``), decide the requirements of a pickled
model. Large numpy buffers are passed out of band, so the scan does not copy them.
"""

from __future__ import annotations

import pickle
import pickletools
import sys
from typing import Any

from slml.errors import ArtifactError

_STRING_OPS = frozenset(
    {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING",
     "SHORT_BINSTRING"}
)  # fmt: skip
_GET_OPS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_PUT_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


def dumps(obj: Any) -> bytes:
    """``obj`` pickled as joblib/pickle would (protocol 5, buffers out of band).
    Raises ArtifactError naming why it cannot be pickled."""
    try:
        return pickle.dumps(obj, protocol=5, buffer_callback=lambda _buffer: None)
    except Exception as exc:
        raise ArtifactError(
            f"the {type(obj).__name__} cannot be pickled ({type(exc).__name__}: {exc})",
            hint="an estimator holding open files, locks or lambdas cannot be saved as data",
        ) from None


def referenced_globals(data: bytes) -> set[tuple[str, str]]:
    """Every ``(module, qualname)`` the pickle ``data`` imports when loaded."""
    found: set[tuple[str, str]] = set()
    memo: dict[Any, Any] = {}  # memo index (an int from the opcode's argument) -> value
    recent: list[Any] = []  # the values of the last pushes, for STACK_GLOBAL
    for opcode, arg, _pos in pickletools.genops(data):
        name = opcode.name
        if name in _STRING_OPS:
            recent.append(arg)
        elif name in _GET_OPS:
            recent.append(memo.get(arg))
        elif name in ("FRAME", "PROTO"):
            continue
        elif name == "MEMOIZE":
            memo[len(memo)] = recent[-1] if recent else None
            continue
        elif name in _PUT_OPS:
            memo[arg] = recent[-1] if recent else None
            continue
        elif name == "GLOBAL":
            module, _, qualname = str(arg).partition(" ")
            found.add((module, qualname))
            recent.append(None)
        elif name == "STACK_GLOBAL":
            pushed = (recent[-2], recent[-1]) if len(recent) >= 2 else (None, None)
            if isinstance(pushed[0], str) and isinstance(pushed[1], str):
                found.add((pushed[0], pushed[1]))
            recent.append(None)
        else:
            recent.append(None)
        del recent[:-2]
    return found


def referenced_modules(obj: Any) -> set[str]:
    """The modules ``pickle.load`` imports to rebuild ``obj``, with the modules of the
    base classes of every class it names (an XGBClassifier's module imports sklearn)."""
    found = referenced_globals(dumps(obj))
    modules = {module for module, _ in found}
    for module, qualname in found:
        cls = _resolve(module, qualname)
        if isinstance(cls, type):
            modules.update(str(base.__module__) for base in cls.__mro__[1:])
    return modules


def _resolve(module: str, qualname: str) -> Any:
    """The object a global names, if its module is already imported (never imports)."""
    value: Any = sys.modules.get(module)
    for part in qualname.split("."):
        value = getattr(value, part, None)
    return value


def requirements_of(obj: Any) -> list[str]:
    """The distributions that provide what ``obj``'s pickle imports, sorted by module.
    Raises ArtifactError when some of it comes from no installed package (``__main__``,
    a loose local module): the serving runtime could not unpickle it."""
    from slml.artifact import requirements as reqs

    modules = referenced_modules(obj)
    bad = sorted(m for m in modules if not reqs.is_importable_anywhere(m))
    if bad:
        raise ArtifactError(
            f"the {type(obj).__name__} refers to code in {', '.join(bad)}, which no "
            "installed package provides; the serving runtime could not unpickle it",
            hint="move that code into an installed package, or save a class of your own "
            "with flavor='python' and code_paths=[...] so the code travels with the model",
        )
    found = [reqs.distribution_of(m) for m in sorted(modules)]
    return list(dict.fromkeys(d for d in found if d))
