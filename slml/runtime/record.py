"""``Record``: what ``@dataclass(frozen=True)`` gives the runtime's small value classes
(fields set once, read-only after, equality, hash and repr over the fields), without
its cost at import.

``dataclasses`` writes each class's methods as source and ``exec``s it when the class
is defined: about 0.6 ms a class, 2.5 ms for the four the runtime loads, on every cold
start (docs/PERFORMANCE.md). A subclass lists its fields in ``_fields`` (compared,
hashed and shown, in that order) and its attributes in ``__slots__``, and sets them in
``__init__`` with ``_set``; assigning or deleting an attribute afterwards raises
AttributeError, as a frozen dataclass does.
"""

from __future__ import annotations

from typing import Any


class Record:
    """A frozen value with slots; see the module docstring."""

    __slots__ = ()
    _fields: tuple[str, ...] = ()

    def _set(self, **values: Any) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Record)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({fields})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r}: {type(self).__name__} is frozen")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}: {type(self).__name__} is frozen")
