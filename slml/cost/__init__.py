"""Estimated monthly cost of a deployment, from the price table kept as data
(``prices.json``: each cloud's list prices with their source page and the date they were
transcribed) and the traffic stated in slml.yaml (``traffic:``).

Pure functions over plain data: ``estimate(provider, section, usage)`` takes a config
section as a mapping and returns a ``CostEstimate`` (None for ``local``). No cloud or
price API is ever called.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import replace
from functools import cache
from importlib.resources import files
from typing import Any

from slml.cost import clouds
from slml.cost.model import (
    DEFAULT_PREDICT_MS,
    DEFAULT_REQUESTS,
    CostEstimate,
    CostLine,
    Usage,
)

__all__ = [
    "DEFAULT_PREDICT_MS",
    "DEFAULT_REQUESTS",
    "CostEstimate",
    "CostLine",
    "Usage",
    "estimate",
    "logged_predict_ms",
    "prices",
]

ESTIMATORS = {
    "aws": clouds.aws_lambda,
    "sagemaker": clouds.sagemaker,
    "gcp": clouds.cloud_run,
    "azure": clouds.azure,
}


@cache
def prices() -> dict[str, Any]:
    """The price table shipped with slml (``slml/cost/prices.json``)."""
    return json.loads(files("slml.cost").joinpath("prices.json").read_text(encoding="utf-8"))


def estimate(
    provider: str, section: Mapping[str, Any], usage: Usage,
    table: Mapping[str, Any] | None = None,
) -> CostEstimate | None:  # fmt: skip
    """The monthly estimate for ``provider`` with its config ``section``; None for a
    provider that runs nowhere billable (``local``) or that slml has no prices for.
    For Lambda, ``alternatives`` holds the list total on the other architecture."""
    estimator = ESTIMATORS.get(provider)
    if estimator is None:
        return None
    table = table if table is not None else prices()
    result = estimator(section, usage, table)
    if provider == "aws":
        other = "arm64" if section["architecture"] == "x86_64" else "x86_64"
        alt = clouds.aws_lambda(section, usage, table, architecture=other)
        result = replace(result, alternatives={other: alt.total_usd})
    return result


def logged_predict_ms(lines: Iterable[str]) -> float | None:
    """The median ``latency_ms`` of successful ``POST /predict`` requests in the
    runtime's JSON log lines (a local deployment's log), or None when there are none."""
    latencies = []
    for line in lines:
        if '"latency_ms"' not in line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if (
            isinstance(event, dict)
            and event.get("path") in ("/predict", "/invocations")
            and event.get("status") == 200
            and isinstance(event.get("latency_ms"), int | float)
        ):
            latencies.append(float(event["latency_ms"]))
    return statistics.median(latencies) if latencies else None
