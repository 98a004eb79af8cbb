"""Where a capture sink writes, from a service's ``SLML_CAPTURE`` value: the bucket (or
container) and prefix each target's plan grants write access to, and nothing more.
Pure; the grants themselves are in the components (aws_policies, cloudrun, azure)."""

from __future__ import annotations

import json

ENV_VAR = "SLML_CAPTURE"  # what slml/runtime/capture.py reads


def object_sink(capture_env: str | None, scheme: str) -> tuple[str, str] | None:
    """``(bucket, prefix)`` of a ``scheme://bucket/prefix`` sink (prefix without
    slashes at its ends, maybe empty); None without capture or on another scheme."""
    sink = json.loads(capture_env).get("sink", "") if capture_env else ""
    if not sink.startswith(f"{scheme}://"):
        return None
    bucket, _, prefix = sink.removeprefix(f"{scheme}://").partition("/")
    return bucket, prefix.strip("/")


def gcs_prefix_condition(bucket: str, prefix: str) -> str:
    """The IAM condition (CEL) that limits a bucket-level binding to objects under
    ``prefix``; the bucket needs uniform bucket-level access for conditions."""
    under = f"projects/_/buckets/{bucket}/objects/{prefix + '/' if prefix else ''}"
    return f'resource.name.startsWith("{under}")'
