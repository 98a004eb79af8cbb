"""AWS operations on a deployed model through boto3: status, logs, invoke, and the
pruning of old published Lambda versions.

Thin clients, each taking an injectable ``boto3.Session`` (tests use moto) or, for
invoke, an ``httpx`` transport (tests use ``httpx.MockTransport`` and check the SigV4
headers). ``fetch_logs``/``tail_logs`` read any CloudWatch Logs group: Lambda's
(``aws``) and a SageMaker endpoint's (``/aws/sagemaker/Endpoints/<name>``). With
``auth: iam`` requests are signed with SigV4 for ``execute-api`` from the caller's own
AWS credentials; with ``auth: api_key`` they carry ``x-api-key``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from slml.errors import InvokeError, ProviderUnavailable
from slml.providers import http_answer

REFUSED_HINT = "with auth: iam, your credentials lack execute-api:Invoke on this API"


def make_session(region: str, session: Any = None) -> Any:
    """``session`` or a new boto3 Session for ``region``."""
    if session is not None:
        return session
    import boto3

    return boto3.Session(region_name=region)


def function_status(
    *, function_name: str, api_id: str | None, region: str, session: Any = None
) -> dict[str, Any]:
    """The function's state, version, runtime and memory, and the API's endpoint.
    Raises InvokeError when AWS says the function does not exist."""
    from botocore.exceptions import ClientError

    s = make_session(region, session)
    try:
        conf = s.client("lambda").get_function(FunctionName=function_name)["Configuration"]
    except ClientError as exc:
        raise InvokeError(
            f"AWS Lambda has no function {function_name!r} in {region}: "
            f"{exc.response['Error'].get('Message', exc)}",
            hint="it may have been deleted outside slml; `slml deploy --provider aws` recreates it",
        ) from None
    details = {
        "function_name": function_name,
        "state": conf.get("State", "Active"),
        "last_update": conf.get("LastUpdateStatus", "Successful"),
        "runtime": conf.get("Runtime") or conf.get("PackageType"),
        "memory": conf.get("MemorySize"),
        "timeout": conf.get("Timeout"),
        "architectures": conf.get("Architectures", []),
        "last_modified": conf.get("LastModified"),
    }
    if api_id:
        api = s.client("apigatewayv2").get_api(ApiId=api_id)
        details["api_endpoint"] = api.get("ApiEndpoint")
    return details


def fetch_logs(
    *,
    log_group: str,
    region: str,
    lines: int = 100,
    start_ms: int | None = None,
    session: Any = None,
    missing_hint: str | None = None,
) -> list[tuple[int, str]]:
    """The last ``lines`` events (0: all) of the log group, oldest first, as
    ``(timestamp_ms, message)``. Raises InvokeError (with ``missing_hint``) when the
    group does not exist, and with AWS's message for any other refusal."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = make_session(region, session).client("logs")
    kwargs: dict[str, Any] = {"logGroupName": log_group}
    if start_ms is not None:
        kwargs["startTime"] = start_ms
    events: list[tuple[int, str]] = []
    try:
        for page in client.get_paginator("filter_log_events").paginate(**kwargs):
            events += [(e["timestamp"], e["message"].rstrip("\n")) for e in page.get("events", [])]
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ResourceNotFoundException":
            raise InvokeError(
                f"CloudWatch Logs has no log group {log_group} in {region}", hint=missing_hint
            ) from None
        raise InvokeError(
            f"reading CloudWatch Logs group {log_group} failed: {error.get('Message', exc)}",
            hint="your credentials need logs:FilterLogEvents on that group",
        ) from None
    except BotoCoreError as exc:
        raise InvokeError(f"reading CloudWatch Logs group {log_group} failed: {exc}") from None
    events.sort(key=lambda e: e[0])
    return events[-lines:] if lines else events


def tail_logs(
    *,
    log_group: str,
    region: str,
    lines: int = 100,
    follow: bool = False,
    session: Any = None,
    missing_hint: str | None = None,
    interval: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> Iterator[str]:
    """The last ``lines`` messages of the group, oldest first; with ``follow``, then
    every newer message, polling every ``interval`` seconds (``sleep``) until the
    consumer stops iterating. ``clock`` gives the start point when the group is empty."""
    events = fetch_logs(
        log_group=log_group, region=region, lines=lines, session=session,
        missing_hint=missing_hint,
    )  # fmt: skip
    yield from (message for _, message in events)
    last = events[-1][0] + 1 if events else int(clock() * 1000)
    while follow:
        sleep(interval)
        new = fetch_logs(
            log_group=log_group, region=region, lines=0, start_ms=last, session=session,
            missing_hint=missing_hint,
        )  # fmt: skip
        yield from (message for _, message in new)
        last = new[-1][0] + 1 if new else last


def sign_headers(
    *, method: str, url: str, body: bytes, region: str, credentials: Any
) -> dict[str, str]:
    """SigV4 headers (service ``execute-api``) for one request."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    request = AWSRequest(
        method=method, url=url, data=body, headers={"content-type": "application/json"}
    )
    SigV4Auth(credentials, "execute-api", region).add_auth(request)
    return dict(request.headers.items())


def invoke_http(
    url: str,
    payload: dict[str, Any],
    *,
    auth: str,
    region: str,
    api_key: str | None = None,
    credentials: Any = None,
    transport: httpx.BaseTransport | None = None,
    timeout: float = 35.0,
) -> dict[str, Any]:
    """POST ``payload`` to ``<url>/predict``; returns the JSON answer. Raises InvokeError
    with the endpoint's error message on a non-2xx answer."""
    target = url.rstrip("/") + "/predict"
    body = json.dumps(payload).encode()
    headers = {"content-type": "application/json"}
    if auth == "iam":
        if credentials is None:
            credentials = make_session(region).get_credentials()
        if credentials is None:
            raise ProviderUnavailable(
                "no AWS credentials found to sign the request (the endpoint uses auth: iam)",
                hint="configure credentials (aws configure, AWS_PROFILE or AWS_ACCESS_KEY_ID)",
            )
        headers = sign_headers(
            method="POST", url=target, body=body, region=region, credentials=credentials
        )
    elif auth == "api_key":
        headers["x-api-key"] = api_key or ""
    with httpx.Client(transport=transport, timeout=timeout) as client:
        response = http_answer.post(client, target, content=body, headers=headers)
    return http_answer.answer_json(response, what=target, refused_hint=REFUSED_HINT)


def prune_versions(
    *, function_name: str, region: str, keep_live: set[str], keep_newest: int,
    session: Any = None,
) -> list[str]:  # fmt: skip
    """Delete the function's published versions that no alias routes to, that are not in
    ``keep_live`` and that are older than its ``keep_newest`` newest. Returns the deleted
    versions, oldest first. Raises InvokeError when Lambda refuses (the caller reports
    it: the deploy itself has succeeded)."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = make_session(region, session).client("lambda", region_name=region)
    try:
        published = sorted(
            (int(v["Version"]) for page in client.get_paginator("list_versions_by_function")
             .paginate(FunctionName=function_name) for v in page["Versions"]
             if v["Version"] != "$LATEST"),
        )  # fmt: skip
        routed = set(keep_live)
        for page in client.get_paginator("list_aliases").paginate(FunctionName=function_name):
            for alias in page["Aliases"]:
                routed.add(alias["FunctionVersion"])
                weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
                routed.update(weights or {})
        newest = set(published[-keep_newest:]) if keep_newest > 0 else set()
        doomed = [v for v in published if str(v) not in routed and v not in newest]
        for version in doomed:
            client.delete_function(FunctionName=function_name, Qualifier=str(version))
    except (ClientError, BotoCoreError) as exc:
        raise InvokeError(f"pruning old versions of {function_name} failed: {exc}") from None
    return [str(v) for v in doomed]
