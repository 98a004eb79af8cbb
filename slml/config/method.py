"""slml.yaml's ``method:`` delivered to every target: ``SLML_METHOD`` in the top-level
``env:``, which every target passes to the serving runtime (slml/bundle/served_env.py;
slml/runtime/serve_method.py applies it)."""

from __future__ import annotations

from typing import Any

from slml.runtime.serve_method import ENV, METHODS

SECTIONS = ("local", "aws", "sagemaker", "gcp", "azure")


def with_method_env(data: Any) -> Any:
    """The raw config with ``SLML_METHOD`` added to its top-level ``env`` when
    ``method`` is set. Raises ValueError (reported at ``method``) for an unknown method,
    or an ``env`` (top-level or a provider's) that sets SLML_METHOD to something else."""
    if not isinstance(data, dict) or data.get("method") is None:
        return data
    method = data["method"]
    if method not in METHODS:
        raise ValueError(f"method: {method!r} is not one of {', '.join(METHODS)}")
    for name in ("", *SECTIONS):
        section = data if not name else data.get(name)
        env = section.get("env") if isinstance(section, dict) else getattr(section, "env", None)
        if isinstance(env, dict) and env.get(ENV, method) != method:
            where = f"{name}.env" if name else "env"
            raise ValueError(
                f"{where} sets {ENV}={env[ENV]!r} but method: is {method!r}; keep one"
            )
    top = data.get("env")
    return {**data, "env": {**(top if isinstance(top, dict) else {}), ENV: method}}
