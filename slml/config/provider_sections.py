"""The provider sections of slml.yaml, owned by the providers themselves.

Every installed provider (entry point group ``slml.providers``, built-in or third
party) may have a top-level section named after it, validated by its own
``config_model``. This module asks the registry which providers are installed and
validates their sections; slml.config knows no provider by name.

``split`` turns a mapping from slml.yaml into the core keys, the validated sections
and the problems found, as pydantic-style error dicts whose location starts with the
section's name, so slml.config reports them like any other key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from slml.errors import SlmlError


@dataclass(frozen=True)
class Installed:
    """The installed providers' names (discovery order); ``model`` loads one plug-in
    for its section model only when a section or the chosen provider needs it, so a
    command pays for the providers it uses, not for every one installed."""

    names: list[str]

    def model(self, name: str) -> type[BaseModel]:
        """The section model of provider ``name``. Raises the registry's error when its
        plug-in cannot be loaded or has the wrong shape."""
        from slml.providers import registry  # found at run time, not imported

        return registry.provider_class(name).config_model


def installed() -> Installed:
    """The providers the registry (slml.providers.registry) finds installed."""
    from slml.providers import registry

    return Installed(registry.installed())


def expected(names: list[str]) -> str:
    """``'a', 'b' or 'c'``: the words pydantic uses for a choice."""
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _errors(name: str, exc: ValidationError) -> list[dict[str, Any]]:
    return [{**e, "loc": (name, *e["loc"])} for e in exc.errors(include_url=False)]


def default(model: type[BaseModel]) -> BaseModel | None:
    """The section a provider gets when slml.yaml has none (None: it has required keys)."""
    try:
        return model()
    except ValidationError:
        return None


def split(
    data: dict[str, Any], *, core: set[str], chosen: str, plugins: Installed
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``data`` with every provider section validated into its model (the ``chosen``
    provider's defaulted when absent, where the model allows), and the problems:
    unknown top-level keys, keys wrong inside a section, a missing section the chosen
    provider requires. Raises the plug-in's own error when slml.yaml has the section of
    a provider whose plug-in cannot be loaded."""
    out: dict[str, Any] = {}
    problems: list[dict[str, Any]] = []
    for key, value in data.items():
        if key in core:
            out[key] = value
        elif key in plugins.names:
            model = plugins.model(key)
            try:
                out[key] = value if isinstance(value, model) else model.model_validate(value)
            except ValidationError as exc:
                problems += _errors(key, exc)
        else:
            problems.append({"type": "extra_forbidden", "loc": (key,), "msg": "", "input": value})
    if chosen in plugins.names and chosen not in data:
        try:
            model = plugins.model(chosen)
        except SlmlError:
            return out, problems  # deploying with it will say why it cannot load
        if (section := default(model)) is None:
            problems.append({"type": "missing", "loc": (chosen,), "msg": "", "input": None})
        else:
            out[chosen] = section
    return out, problems
