"""slml.yaml's ``method:`` delivered to every target: ``SLML_METHOD`` in each provider
section's ``env`` (local, aws, sagemaker, gcp, azure), which each target already passes
to the serving runtime (slml/runtime/serve_method.py applies it)."""

from __future__ import annotations

from typing import Any

from slml.runtime.serve_method import ENV, METHODS

SECTIONS = ("local", "aws", "sagemaker", "gcp", "azure")


def with_method_env(data: Any) -> Any:
    """The raw config with ``SLML_METHOD`` added to each section's env when ``method``
    is set. Raises ValueError (reported at ``method``) for an unknown method or an env
    that sets SLML_METHOD to something else."""
    if not isinstance(data, dict) or data.get("method") is None:
        return data
    method = data["method"]
    if method not in METHODS:
        raise ValueError(f"method: {method!r} is not one of {', '.join(METHODS)}")
    out = dict(data)
    for name in SECTIONS:
        section = out.get(name) or {}
        if not isinstance(section, dict):
            continue  # the section's own validation reports it
        env = dict(section.get("env") or {})
        if env.get(ENV, method) != method:
            raise ValueError(
                f"{name}.env sets {ENV}={env[ENV]!r} but method: is {method!r}; keep one"
            )
        out[name] = {**section, "env": {**env, ENV: method}}
    return out
