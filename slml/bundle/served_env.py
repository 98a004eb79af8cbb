"""The served model's environment on one target, from one place.

``served_env(config, provider, manifest)`` is, in order of precedence (later wins):

1. what the artifact needs (``flavor_options.env``, e.g. ``KERAS_BACKEND=torch``);
2. ``SLML_NUM_THREADS``: the target's vCPUs, for torch's intra-op threads
   (slml/runtime/torch_flavor.py), when the target's config fixes them;
3. slml.yaml's top-level ``env:`` (every target);
4. the provider section's own ``env:`` (``local.env``, ``aws.env``, ...).

Each provider passes this mapping as its environment variables (the local server's
environment, Lambda's, Cloud Run's, SageMaker's, Azure's app settings).
"""

from __future__ import annotations

from typing import Any

THREADS_VAR = "SLML_NUM_THREADS"  # the same name slml/runtime/torch_flavor.py reads
#: Lambda allocates CPU in proportion to memory: one vCPU at 1,769 MB, six at 10,240 MB
#: (AWS Lambda developer guide, "Configure Lambda function memory").
LAMBDA_MB_PER_VCPU = 1769
LAMBDA_MAX_VCPUS = 6
#: Azure Functions Flex Consumption instance sizes: 2,048 MB has 1 vCPU, 4,096 MB 2
#: (Flex Consumption plan docs, "Instance memory"); 512 MB is a fraction of one.
AZURE_FLEX_VCPUS = {512: 1, 2048: 1, 4096: 2}


def target_vcpus(config: Any, provider: str) -> int | None:
    """Whole vCPUs the target gives one instance (Lambda's share of memory rounded, at
    least 1), when its config fixes them (None for local and SageMaker serverless: the
    runtime then counts the CPUs it may use)."""
    if provider == "aws":
        share: float = config.aws.memory / LAMBDA_MB_PER_VCPU
        return max(1, min(LAMBDA_MAX_VCPUS, round(share)))
    if provider == "gcp":
        return int(config.gcp.cpu)
    if provider == "azure":
        if config.azure.plan != "flex":
            return 1
        return AZURE_FLEX_VCPUS.get(config.azure.memory, 1)
    return None


def artifact_env(manifest: dict[str, Any] | None) -> dict[str, str]:
    """The environment the artifact asks for (``flavor_options.env``)."""
    options = (manifest or {}).get("flavor_options") or {}
    env = options.get("env") or {}
    return {str(k): str(v) for k, v in env.items()} if isinstance(env, dict) else {}


def served_env(config: Any, provider: str, manifest: dict[str, Any] | None) -> dict[str, str]:
    """The model's environment variables on ``provider`` (see the module docstring)."""
    env = artifact_env(manifest)
    vcpus = target_vcpus(config, provider)
    if vcpus is not None:
        env[THREADS_VAR] = str(vcpus)
    env.update(getattr(config, "env", None) or {})
    section = getattr(config, provider, None)
    env.update(getattr(section, "env", None) or {})
    return env


def model_env(ctx: Any, provider: str) -> dict[str, str]:
    """``served_env`` for a provider call's context (its config and model artifact; a
    program given a prebuilt bundle without the artifact gets no artifact env)."""
    from slml.runtime.manifest import ArtifactFormatError, read_manifest

    try:
        manifest = read_manifest(ctx.config.model)
    except (ArtifactFormatError, OSError):
        manifest = None
    return served_env(ctx.config, provider, manifest)


def with_model_env(spec: Any, ctx: Any, provider: str) -> Any:
    """A copy of a frozen spec dataclass whose ``env`` is ``model_env(ctx, provider)``."""
    import dataclasses

    return dataclasses.replace(spec, env=model_env(ctx, provider))
