"""One estimator per target: pure functions of a provider's config section (as a
mapping, ``section.model_dump()``), the ``Usage`` and the price table (prices.json).

Each bills what its platform bills: Lambda per ms, Cloud Run per 100 ms of instance
time, Azure Flex at least 1,000 ms per execution, SageMaker serverless per ms. Requests
are assumed not to overlap on one instance (an upper bound for Cloud Run and Azure,
where concurrent requests share billed instance time).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from slml.cost.model import CostEstimate, CostLine, Usage

GB = 1024**3
MB = 1024**2
Prices = Mapping[str, Any]
Section = Mapping[str, Any]
LAMBDA_DIRECT_UPLOAD = 50 * MB  # over this the zips go through S3 (lambda_bundle)
IMAGE_SIZE = "image storage counts the built context's size, uncompressed (an upper bound)"


def billed_ms(usage: Usage, table: Mapping[str, Any]) -> float:
    """Milliseconds billed per request: the duration (plus the platform's overhead when
    it is the bare predict time), rounded up to the billing granularity, at least the
    platform's minimum."""
    duration = usage.duration_ms + (table.get("overhead_ms", 0) if usage.add_overhead else 0)
    step = table.get("billing_granularity_ms", 1)
    rounded = math.ceil(round(duration / step, 9)) * step
    return float(max(rounded, table.get("minimum_billed_ms", 0)))


def free(table: Mapping[str, Any], key: str) -> float:
    """A free-tier allowance that recurs every month (0 for 12-month or trial tiers)."""
    tier = table.get("free_tier", {})
    return float(tier.get(key, 0)) if tier.get("recurring") else 0.0


def _tiers(*named: tuple[str, Mapping[str, Any]]) -> str:
    parts = [f"{name}: {table['free_tier']['kind']}" for name, table in named
             if "free_tier" in table]  # fmt: skip
    recurring = [name for name, table in named if table.get("free_tier", {}).get("recurring")]
    applied = (
        f"the after-free-tier total subtracts only the monthly ones ({', '.join(recurring)})"
        if recurring else "no monthly free tier applies: both totals are the same"
    )  # fmt: skip
    return "free tiers: " + "; ".join(parts) + f". The list total includes none; {applied}"


def _estimate(provider: str, target: str, region: str, usage: Usage, ms: float,
              lines: list[CostLine], tables: tuple[tuple[str, Mapping[str, Any]], ...],
              prices: Prices, assumptions: list[str]) -> CostEstimate:  # fmt: skip
    return CostEstimate(
        provider=provider, target=target, region=region, usage=usage,
        billed_ms_per_request=ms, lines=tuple(lines), free_tier=_tiers(*tables),
        assumptions=(_duration_words(usage), *assumptions),
        sources=tuple(dict.fromkeys(t["source"] for _, t in tables)),
        prices_transcribed=prices["transcribed"], prices_note=prices["about"],
    )  # fmt: skip


def _duration_words(usage: Usage) -> str:
    extra = " plus the platform's overhead" if usage.add_overhead else ""
    return (
        f"{usage.requests_per_month:,} requests/month at {usage.duration_ms:g} ms each{extra} "
        f"({usage.source})"
    )


def _storage_gb(usage: Usage) -> float:
    return usage.storage_bytes / GB


def aws_lambda(section: Section, usage: Usage, prices: Prices, *,
               architecture: str | None = None) -> CostEstimate:  # fmt: skip
    """Lambda + API Gateway HTTP API. ``architecture`` overrides the section's."""
    p, api, s3 = prices["aws_lambda"], prices["aws_api_gateway_http"], prices["aws_s3"]
    arch = architecture or section["architecture"]
    memory_gb, n, ms = section["memory"] / 1024, usage.requests_per_month, billed_ms(usage, p)
    gb_s = n * ms / 1000 * memory_gb
    lines = [CostLine("Lambda requests", n, "requests", p["requests_per_million"], 1e6,
                      free(p, "requests"))]  # fmt: skip
    size = f"{section['memory']} MB x {ms:g} ms"
    if section.get("provisioned_concurrency"):
        count = section["provisioned_concurrency"]
        always = count * memory_gb * prices["month_seconds"]
        lines += [
            CostLine(f"provisioned concurrency: {count} x {section['memory']} MB, all month",
                     always, "GB-s", p["provisioned_gb_s"][arch]),
            CostLine(f"compute on provisioned instances ({arch}, {size})", gb_s, "GB-s",
                     p["provisioned_duration_gb_s"][arch]),
        ]  # fmt: skip
    else:
        lines.append(CostLine(f"compute ({arch}, {size})", gb_s, "GB-s",
                              p["duration_gb_s"][arch], free=free(p, "duration_gb_s")))  # fmt: skip
    extra_tmp = section.get("ephemeral_storage", 512) - 512
    if extra_tmp > 0:
        lines.append(CostLine(f"ephemeral storage above 512 MB (+{extra_tmp} MB)",
                              extra_tmp / 1024 * n * ms / 1000, "GB-s",
                              p["ephemeral_storage_gb_s"]))  # fmt: skip
    if section.get("snapstart"):
        lines += _snapstart(p, memory_gb, prices)
    lines.append(CostLine("API Gateway HTTP API requests", n, "requests",
                          api["requests_per_million"], 1e6))  # fmt: skip
    lines.append(_lambda_storage(usage, s3))
    assumptions = [
        "every request is served warm; init time of cold starts (billed since August "
        "2025) is not included",
        "one API Gateway request per invocation (each 512 KB of payload counts as one)",
    ]
    return _estimate("aws", f"Lambda {arch} + API Gateway HTTP API", p["region"], usage, ms,
                     lines, (("Lambda", p), ("API Gateway", api), ("S3", s3)), prices,
                     assumptions)  # fmt: skip


def _snapstart(p: Mapping[str, Any], memory_gb: float, prices: Prices) -> list[CostLine]:
    cache = memory_gb * prices["month_seconds"]  # one published version cached all month
    return [
        CostLine("SnapStart cache (1 published version, all month)", cache, "GB-s",
                 p["snapstart_cache_gb_s"]),
        CostLine("SnapStart restores (per cold start; not estimated)", 0, "GB restored",
                 p["snapstart_restore_gb"], note="depends on the cold-start rate"),
    ]  # fmt: skip


def _lambda_storage(usage: Usage, s3: Mapping[str, Any]) -> CostLine:
    gb = _storage_gb(usage)
    if usage.storage_bytes > LAMBDA_DIRECT_UPLOAD:
        return CostLine("S3 copy of the code and layer zips (over 50 MB)", gb, "GB-month",
                        s3["storage_gb_month"])  # fmt: skip
    return CostLine("code storage (free up to 75 GB per region)", gb, "GB-month", 0.0)


def sagemaker(section: Section, usage: Usage, prices: Prices) -> CostEstimate:
    """A SageMaker endpoint: serverless (per ms of compute) or instance-backed (hours)."""
    p, ecr = prices["sagemaker_serverless"], prices["aws_ecr"]
    n, ms = usage.requests_per_month, billed_ms(usage, p)
    assumptions = ["callers use sagemaker-runtime directly (no API Gateway in front)"]
    instance = section.get("instance_type")
    if instance:
        lines = [_instance_hours(section, prices)]
        target = f"SageMaker real-time endpoint ({section['instance_count']} x {instance})"
        ms = 0.0
    else:
        memory_gb = section["memory"] / 1024
        data_gb = n * p["payload_kb_per_request"] * 1024 / GB
        lines = [
            CostLine(f"serverless compute ({section['memory']} MB x {ms:g} ms)",
                     n * ms / 1000 * memory_gb, "GB-s", p["compute_gb_s"]),
            CostLine(f"data processed in + out ({p['payload_kb_per_request']} KB per request)",
                     data_gb, "GB", p["data_processed_gb"]),
        ]  # fmt: skip
        target = "SageMaker serverless endpoint"
        assumptions.append("cold starts of serverless endpoints are not billed as compute")
    lines.append(CostLine("ECR image storage", _storage_gb(usage), "GB-month",
                          ecr["storage_gb_month"]))  # fmt: skip
    assumptions.append(IMAGE_SIZE)
    tables = (("SageMaker", p), ("ECR", ecr))
    return _estimate("sagemaker", target, p["region"], usage, ms, lines, tables, prices,
                     assumptions)  # fmt: skip


def _instance_hours(section: Section, prices: Prices) -> CostLine:
    hourly = prices["sagemaker_instance_hour"]
    instance, count = section["instance_type"], section["instance_count"]
    hours = count * prices["month_seconds"] / 3600
    if instance not in hourly:
        return CostLine(
            f"{count} x {instance}, all month",
            hours,
            "instance-hours",
            0.0,
            note=f"{instance} is not in slml's price table: see {hourly['source']}",
        )
    return CostLine(f"{count} x {instance}, all month", hours, "instance-hours", hourly[instance])


def _gib(memory: str) -> float:
    number = float(memory[:-2])
    return number if memory.endswith("Gi") else number / 1024


def cloud_run(section: Section, usage: Usage, prices: Prices) -> CostEstimate:
    """A Cloud Run service with request-based billing."""
    p, ar = prices["cloud_run"], prices["artifact_registry"]
    n, ms = usage.requests_per_month, billed_ms(usage, p)
    cpu, gib = float(section["cpu"]), _gib(section["memory"])
    seconds = n * ms / 1000
    lines = [
        CostLine("Cloud Run requests", n, "requests", p["requests_per_million"], 1e6,
                 free(p, "requests")),
        CostLine(f"CPU ({section['cpu']} vCPU x {ms:g} ms)", cpu * seconds, "vCPU-s",
                 p["cpu_s"], free=free(p, "cpu_s")),
        CostLine(f"memory ({section['memory']} x {ms:g} ms)", gib * seconds, "GiB-s",
                 p["memory_gib_s"], free=free(p, "memory_gib_s")),
    ]  # fmt: skip
    warm = section.get("min_instances", 0)
    if warm:
        idle = warm * prices["month_seconds"]
        lines += [
            CostLine(f"min_instances: {warm} idle, all month (CPU)", cpu * idle, "vCPU-s",
                     p["idle_cpu_s"]),
            CostLine(f"min_instances: {warm} idle, all month (memory)", gib * idle, "GiB-s",
                     p["idle_memory_gib_s"]),
        ]  # fmt: skip
    lines.append(CostLine("Artifact Registry image storage", _storage_gb(usage), "GB-month",
                          ar["storage_gb_month"], free=free(ar, "storage_gb_month")))  # fmt: skip
    assumptions = [
        f"instance time rounded up to {p['billing_granularity_ms']} ms per request, requests "
        "not overlapping (concurrent requests share instance time: an upper bound)",
    ]
    assumptions.append(IMAGE_SIZE)
    if section.get("gpu"):  # GPU price not in the table: say so rather than guess
        assumptions.append(
            f"gcp.gpu {section['gpu']}: NOT priced here; a GPU service is billed per instance "
            "for its whole lifetime (instance-based billing), GPU included, so this total "
            "is a lower bound (see cloud.google.com/run/pricing)"
        )
    tables = (("Cloud Run", p), ("Artifact Registry", ar))
    return _estimate("gcp", "Cloud Run service (request-based billing)", p["region"], usage,
                     ms, lines, tables, prices, assumptions)  # fmt: skip


def azure(section: Section, usage: Usage, prices: Prices) -> CostEstimate:
    """An Azure Function App on Flex Consumption or Linux Consumption."""
    flex = section["plan"] == "flex"
    p, blob = prices["azure_flex" if flex else "azure_consumption"], prices["azure_blob"]
    n, ms = usage.requests_per_month, billed_ms(usage, p)
    if flex:
        memory_mb = section["memory"]
    else:
        step = p["memory_granularity_mb"]
        memory_mb = math.ceil(p["assumed_memory_mb"] / step) * step
    gb_s = n * ms / 1000 * memory_mb / 1024
    lines = [
        CostLine("executions", n, "executions", p["executions_per_million"], 1e6,
                 free(p, "executions")),
        CostLine(f"execution time ({memory_mb} MB x {ms:g} ms)", gb_s, "GB-s",
                 p["execution_gb_s"], free=free(p, "execution_gb_s")),
    ]  # fmt: skip
    ready = section.get("always_ready", 0) if flex else 0
    if ready:
        lines.append(CostLine(f"always-ready baseline: {ready} x {memory_mb} MB, all month",
                              ready * memory_mb / 1024 * prices["month_seconds"], "GB-s",
                              p["always_ready_baseline_gb_s"]))  # fmt: skip
    lines.append(CostLine("Blob storage of the package", _storage_gb(usage), "GB-month",
                          blob["storage_gb_month"]))  # fmt: skip
    assumptions = [
        f"each execution billed for at least {p['minimum_billed_ms']} ms, executions not "
        "overlapping (concurrent executions share instance time: an upper bound)",
    ]
    if not flex:
        assumptions.append(f"Linux Consumption bills observed memory: assumed "
                           f"{p['assumed_memory_mb']} MB")  # fmt: skip
    plan = "Flex Consumption" if flex else "Linux Consumption"
    tables = (("Azure Functions", p), ("Blob storage", blob))
    return _estimate("azure", f"Function App ({plan})", p["region"], usage, ms, lines,
                     tables, prices, assumptions)  # fmt: skip
