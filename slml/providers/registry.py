"""Find providers through the ``slml.providers`` entry point group, and check them.

A plug-in is checked when it is loaded: it must be a class whose ``name`` is its entry
point's name, which subclasses ``slml.providers.base.ProviderBase`` (the optional
hooks' defaults), whose ``config_model`` is a pydantic model (it validates the
provider's section of slml.yaml) and which implements the required methods
(``build``, ``plan``, ``deploy``, ``destroy``). A plug-in of the wrong shape is a
``ProviderUnavailable`` naming its entry point and the package that installed it.
"""

from __future__ import annotations

import functools
import sys
from importlib.metadata import EntryPoint, entry_points

from pydantic import BaseModel

from slml.errors import ConfigError, ProviderUnavailable
from slml.providers.base import ProviderBase

GROUP = "slml.providers"
REQUIRED_METHODS = ("build", "plan", "deploy", "destroy")


def _entry_points() -> list[EntryPoint]:
    """The group's entry points in discovery order, the first of each name. Scanning
    the installed packages costs ~15 ms, so the answer is kept for as long as
    ``sys.path`` is unchanged (a test putting a plug-in on the path is seen)."""
    return list(_scan(tuple(sys.path)))


@functools.lru_cache(maxsize=4)
def _scan(path: tuple[str, ...]) -> tuple[EntryPoint, ...]:
    seen: dict[str, EntryPoint] = {}
    for ep in entry_points(group=GROUP):
        seen.setdefault(ep.name, ep)
    return tuple(seen.values())


def installed() -> list[str]:
    """Names of every registered provider, in discovery order."""
    return [ep.name for ep in _entry_points()]


def available() -> list[str]:
    """Names of every registered provider, built-in or third-party, sorted."""
    return sorted(installed())


def origin(ep: EntryPoint) -> str:
    """Where an entry point comes from, in words: ``docker = pkg.mod:Cls (package x 1.0)``."""
    dist = ep.dist
    package = f" (package {dist.name} {dist.version})" if dist is not None else ""
    return f"entry point {ep.name} = {ep.value} in group {GROUP}{package}"


def shape_problems(cls: object, *, name: str) -> list[str]:
    """What is wrong with a loaded plug-in's shape, in words (empty: nothing)."""
    if not isinstance(cls, type):
        return [f"it is a {type(cls).__name__}, not a class"]
    problems = []
    if not issubclass(cls, ProviderBase):
        problems.append("it does not subclass slml.providers.base.ProviderBase")
    declared = getattr(cls, "name", None)
    if declared != name:
        problems.append(f"its name is {declared!r}, not its entry point's name {name!r}")
    model = getattr(cls, "config_model", None)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        problems.append(f"config_model is {model!r}, not a pydantic model class")
    missing = [m for m in REQUIRED_METHODS
               if getattr(cls, m, None) in (None, getattr(ProviderBase, m))]  # fmt: skip
    if missing:
        problems.append(f"it has no method {', '.join(missing)}")
    return problems


def _load(ep: EntryPoint) -> type[ProviderBase]:
    name = ep.name
    try:
        cls = ep.load()
    except ImportError as exc:
        if (exc.name or "").startswith("slml"):
            raise ProviderUnavailable(
                f"provider {name!r} is registered but its module {exc.name} is missing",
                hint="reinstall slml (pip install --force-reinstall slml)",
            ) from None
        raise ProviderUnavailable(
            f"provider {name!r} needs packages that are not installed ({exc.name or exc})",
            hint=f"pip install 'slml[{name if name != 'sagemaker' else 'aws'}]'",
        ) from None
    except (AttributeError, SyntaxError) as exc:
        raise ProviderUnavailable(
            f"provider {name!r} cannot be loaded from its {origin(ep)}: {exc}",
            hint="fix or uninstall that package",
        ) from None
    problems = shape_problems(cls, name=name)
    if problems:
        raise ProviderUnavailable(
            f"provider {name!r} has the wrong shape: {'; '.join(problems)} ({origin(ep)})",
            hint="a provider is a class as in slml/providers/base.py; fix or uninstall "
            + (f"{ep.dist.name}" if ep.dist is not None else "that package"),
        )
    checked: type[ProviderBase] = cls
    return checked


def provider_class(name: str) -> type[ProviderBase]:
    """The checked class of the provider called ``name``.

    Raises ConfigError for an unknown name and ProviderUnavailable when its module
    cannot be imported (a missing extra such as ``slml[aws]``) or has the wrong shape.
    """
    matches = [ep for ep in _entry_points() if ep.name == name]
    if not matches:
        raise ConfigError(f"unknown provider {name!r}; expected one of: {', '.join(available())}")
    return _load(matches[0])


def get_provider(name: str) -> ProviderBase:
    """An instance of the provider called ``name`` (see ``provider_class``)."""
    return provider_class(name)()
