"""The monthly cost estimate: each cloud's arithmetic checked by hand against the price
table shipped in slml/cost/prices.json, the config's `traffic:` key, the local log as
the default duration, and how the preview renders it."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from slml.cli import render
from slml.config import AwsConfig, AzureConfig, GcpConfig, SageMakerConfig, parse_config
from slml.cost import Usage, estimate, logged_predict_ms, prices
from slml.errors import ConfigError
from slml.providers.base import Plan

P = prices()
N = 1_000_000
MB = 1024**2
USAGE = Usage(requests_per_month=N, duration_ms=10.0, storage_bytes=400 * MB)


def lines(result) -> dict[str, float]:
    return {line.item.split(" (")[0]: line.usd for line in result.lines}


def test_the_price_table_names_its_sources_and_date():
    assert P["transcribed"] == "2026-12-01"
    for key, table in P.items():
        if isinstance(table, dict):
            assert table["source"].startswith("https://"), key
            assert "region" in table, key


def test_lambda_bills_requests_gb_seconds_api_gateway_and_s3_storage():
    lam, api, s3 = P["aws_lambda"], P["aws_api_gateway_http"], P["aws_s3"]
    result = estimate("aws", AwsConfig().model_dump(), USAGE)
    ms = 10 + lam["overhead_ms"]  # 15 ms, billed per ms
    assert result.billed_ms_per_request == ms
    gb_s = N * ms / 1000 * 1024 / 1024
    expected = {
        "Lambda requests": N / 1e6 * lam["requests_per_million"],
        "compute": gb_s * lam["duration_gb_s"]["x86_64"],
        "API Gateway HTTP API requests": N / 1e6 * api["requests_per_million"],
        "S3 copy of the code and layer zips": 400 / 1024 * s3["storage_gb_month"],
    }
    assert lines(result) == pytest.approx(expected)
    assert result.total_usd == pytest.approx(sum(expected.values()))
    # the always-free tier covers 1M requests and 400,000 GB-s; API Gateway's is 12 months
    assert result.total_after_free_usd == pytest.approx(
        expected["API Gateway HTTP API requests"] + expected["S3 copy of the code and layer zips"]
    )
    arm = expected["compute"] * lam["duration_gb_s"]["arm64"] / lam["duration_gb_s"]["x86_64"]
    assert result.alternatives["arm64"] == pytest.approx(result.total_usd - expected["compute"]
                                                         + arm)  # fmt: skip
    assert lam["duration_gb_s"]["arm64"] == pytest.approx(lam["duration_gb_s"]["x86_64"] * 0.8,
                                                          rel=1e-4)  # fmt: skip
    assert "API Gateway: first 12 months" in result.free_tier


def test_lambda_provisioned_concurrency_and_extra_tmp_are_billed_all_month():
    lam = P["aws_lambda"]
    section = AwsConfig(memory=2048, architecture="arm64", provisioned_concurrency=2,
                        ephemeral_storage=1536).model_dump()  # fmt: skip
    usage = Usage(requests_per_month=N, duration_ms=40.0, add_overhead=False)
    result = lines(estimate("aws", section, usage))
    assert result["provisioned concurrency: 2 x 2048 MB, all month"] == pytest.approx(
        2 * 2 * P["month_seconds"] * lam["provisioned_gb_s"]["arm64"]
    )
    assert result["compute on provisioned instances"] == pytest.approx(
        N * 0.040 * 2 * lam["provisioned_duration_gb_s"]["arm64"]
    )
    assert result["ephemeral storage above 512 MB"] == pytest.approx(
        1 * N * 0.040 * lam["ephemeral_storage_gb_s"]
    )
    assert "compute" not in result  # on-demand duration is not billed twice
    assert result["code storage"] == 0  # under 50 MB: no S3 copy


def test_sagemaker_serverless_and_instance_backed():
    sm, ecr = P["sagemaker_serverless"], P["aws_ecr"]
    result = estimate("sagemaker", SageMakerConfig(memory=2048).model_dump(), USAGE)
    ms = 10 + sm["overhead_ms"]
    expected = {
        "serverless compute": N * ms / 1000 * 2 * sm["compute_gb_s"],
        "data processed in + out": N * 1024 / 1024**3 * sm["data_processed_gb"],
        "ECR image storage": 400 / 1024 * ecr["storage_gb_month"],
    }
    assert lines(result) == pytest.approx(expected)
    assert result.total_after_free_usd == result.total_usd  # no monthly free tier
    instance = SageMakerConfig(instance_type="ml.m5.large", instance_count=2).model_dump()
    hours = 2 * P["month_seconds"] / 3600
    assert lines(estimate("sagemaker", instance, USAGE))["2 x ml.m5.large, all month"] == (
        pytest.approx(hours * P["sagemaker_instance_hour"]["ml.m5.large"])
    )
    unknown = estimate("sagemaker", {**instance, "instance_type": "ml.x9.huge"}, USAGE)
    assert "not in slml's price table" in unknown.lines[0].note


def test_cloud_run_rounds_to_100_ms_and_prices_idle_min_instances():
    run, ar = P["cloud_run"], P["artifact_registry"]
    section = GcpConfig(cpu="2", memory="512Mi", min_instances=1).model_dump()
    result = estimate("gcp", section, USAGE)
    assert result.billed_ms_per_request == 100  # 12 ms rounded up
    seconds = N * 0.1
    expected = {
        "Cloud Run requests": N / 1e6 * run["requests_per_million"],
        "CPU": 2 * seconds * run["cpu_s"],
        "memory": 0.5 * seconds * run["memory_gib_s"],
        "min_instances: 1 idle, all month": 0.0,  # two lines of that name: summed below
        "Artifact Registry image storage": 400 / 1024 * ar["storage_gb_month"],
    }
    idle = [ln.usd for ln in result.lines if ln.item.startswith("min_instances")]
    assert sum(idle) == pytest.approx(
        P["month_seconds"] * (2 * run["idle_cpu_s"] + 0.5 * run["idle_memory_gib_s"])
    )
    got = lines(result)
    got["min_instances: 1 idle, all month"] = 0.0
    assert got == pytest.approx(expected)
    # always-free: 2M requests, 180,000 vCPU-s, 360,000 GiB-s, 0.5 GB of images
    after = {ln.item.split(" (")[0]: ln.usd_after_free for ln in result.lines}
    assert after["Cloud Run requests"] == 0 and after["memory"] == 0
    assert after["CPU"] == pytest.approx((200_000 - 180_000) * run["cpu_s"])
    assert after["Artifact Registry image storage"] == 0


def test_azure_flex_bills_at_least_a_second_and_consumption_rounds_memory():
    flex, cons, blob = P["azure_flex"], P["azure_consumption"], P["azure_blob"]
    result = estimate("azure", AzureConfig().model_dump(), USAGE)
    assert result.billed_ms_per_request == 1000
    expected = {
        "executions": N / 1e6 * flex["executions_per_million"],
        "execution time": N * 1.0 * 2 * flex["execution_gb_s"],
        "Blob storage of the package": 400 / 1024 * blob["storage_gb_month"],
    }
    assert lines(result) == pytest.approx(expected)
    assert result.total_after_free_usd == pytest.approx(
        (N - 250_000) / 1e6 * flex["executions_per_million"]
        + (2_000_000 - 100_000) * flex["execution_gb_s"]
        + expected["Blob storage of the package"]
    )
    consumption = estimate("azure", AzureConfig(plan="consumption").model_dump(), USAGE)
    assert consumption.billed_ms_per_request == 100
    assert lines(consumption)["execution time"] == pytest.approx(
        N * 0.1 * 0.5 * cons["execution_gb_s"]
    )


def test_local_has_no_cost_and_a_stated_duration_is_taken_whole():
    assert estimate("local", {}, USAGE) is None
    whole = Usage(requests_per_month=N, duration_ms=7.2, add_overhead=False)
    assert estimate("aws", AwsConfig().model_dump(), whole).billed_ms_per_request == 8


def test_traffic_key_is_validated_and_optional(tmp_path):
    base = "name: iris\nmodel: m\n"
    assert parse_config(base).traffic is None
    config = parse_config(base + "traffic:\n  requests_per_month: 5000\n  avg_duration_ms: 3\n")
    assert (config.traffic.requests_per_month, config.traffic.avg_duration_ms) == (5000, 3.0)
    with pytest.raises(ConfigError) as info:
        parse_config(base + "traffic:\n  requests_per_month: -1\n  rps: 3\n")
    assert "traffic.requests_per_month" in info.value.message
    assert "traffic.rps: unknown key" in info.value.message


def test_logged_predict_ms_is_the_median_of_successful_predictions():
    log = [
        json.dumps({"event": "request", "path": "/predict", "status": 200, "latency_ms": ms})
        for ms in (1.0, 2.0, 9.0)
    ] + [
        json.dumps({"event": "request", "path": "/predict", "status": 422, "latency_ms": 50}),
        json.dumps({"event": "request", "path": "/healthz", "status": 200, "latency_ms": 0.1}),
        "not json", '{"event": "ready"}',
    ]  # fmt: skip
    assert logged_predict_ms(log) == 2.0
    assert logged_predict_ms(["noise"]) is None


def test_the_preview_renders_the_breakdown_and_json_carries_the_totals():
    result = estimate("aws", AwsConfig().model_dump(), USAGE)
    plan = Plan(provider="aws", stage="dev", kind="offline", cost=result)
    out = io.StringIO()
    render.plan(Console(file=out, force_terminal=False, width=200), plan)
    text = out.getvalue()
    assert "Estimated monthly cost of Lambda x86_64 + API Gateway HTTP API" in text
    total = next(line for line in text.splitlines() if line.startswith("total\t"))
    assert total.split("\t")[-2:] == [f"${result.total_usd:.2f}",
                                      f"${result.total_after_free_usd:.2f}"]  # fmt: skip
    assert "on arm64 instead" in text and "prices transcribed 2026-12-01" in text
    assert "compute (x86_64, 1024 MB x 15 ms)\t15,000 GB-s\t$0.0000166667 / GB-s" in text
    data = render.to_data(plan)["cost"]
    assert data["total_usd"] == pytest.approx(result.total_usd)
    assert data["lines"][0]["usd"] == pytest.approx(0.2)


def test_the_duration_defaults_to_the_local_deployment_log(tmp_path):
    from slml.api import estimate_cost
    from slml.providers.base import Bundle, ProviderContext, SizeReport
    from slml.state import ProjectState

    config = parse_config("name: iris\nmodel: m\nprovider: aws\n")
    state = ProjectState(tmp_path)
    bundle = Bundle("aws", tmp_path, "lock", "sha", "3.12", "x86_64", SizeReport(1, 2 * MB))
    ctx = ProviderContext(config=config, state=state)
    assert estimate_cost(ctx, bundle).usage.duration_ms == 10.0  # nothing logged: default
    log = tmp_path / "server.log"
    line = {"event": "request", "path": "/predict", "status": 200, "latency_ms": 0.8}
    log.write_text(json.dumps(line) + "\n")
    state.write_record("dev", "local", {"version": 1, "log": str(log)})
    cost = estimate_cost(ctx, bundle)
    assert (cost.usage.duration_ms, cost.billed_ms_per_request) == (0.8, 6)  # + 5 ms overhead
    assert "local log" in cost.usage.source and cost.usage.storage_bytes == 2 * MB
    local = ProviderContext(config=config.with_overrides(provider="local"), state=state)
    assert estimate_cost(local, bundle) is None


def test_a_gpu_service_says_its_gpu_is_not_priced():
    section = GcpConfig(gpu="nvidia-l4", cpu="4", memory="16Gi").model_dump()
    result = estimate("gcp", section, USAGE)
    assert any("NOT priced here" in a and "lower bound" in a for a in result.assumptions)
    plain = estimate("gcp", GcpConfig().model_dump(), USAGE)
    assert not any("gpu" in a for a in plain.assumptions)
