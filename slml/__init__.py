"""slml: serve any trained model on serverless infrastructure, from one config.

The public API is loaded lazily so that ``import slml.runtime`` (what runs inside every
bundle, on every cold start) pays for nothing but the runtime itself.

    import slml
    slml.save_model(model, "artifacts/iris", sample_input=X[:5])
    model = slml.load_model("artifacts/iris")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "save_model": "slml.artifact",
    "load_model": "slml.artifact",
    "build": "slml.api",
    "deploy": "slml.api",
    "preview": "slml.api",
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:  # pragma: no cover
    from slml.api import build as build
    from slml.api import deploy as deploy
    from slml.api import preview as preview
    from slml.artifact import load_model as load_model
    from slml.artifact import save_model as save_model


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'slml' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
