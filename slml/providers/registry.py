"""Find providers through the ``slml.providers`` entry point group."""

from __future__ import annotations

from importlib.metadata import entry_points

from slml.errors import ConfigError, ProviderUnavailable
from slml.providers.base import Provider

GROUP = "slml.providers"


def available() -> list[str]:
    """Names of every registered provider, built-in or third-party."""
    return sorted({ep.name for ep in entry_points(group=GROUP)})


def get_provider(name: str) -> Provider:
    """An instance of the provider called ``name``.

    Raises ConfigError for an unknown name and ProviderUnavailable when its module
    cannot be imported (a missing extra such as ``slml[aws]``).
    """
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not matches:
        raise ConfigError(f"unknown provider {name!r}; expected one of: {', '.join(available())}")
    try:
        cls = matches[0].load()
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
    return cls()
