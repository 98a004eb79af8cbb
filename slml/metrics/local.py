"""Local servers' metrics: ``GET /metrics`` of each live version (its admin port when it
has one, so the answer comes from that very process, else the stage's URL)."""

from __future__ import annotations

from typing import Any

import httpx

from slml.errors import NotDeployed
from slml.metrics import VersionMetrics, from_prometheus


def targets(record: dict[str, Any]) -> list[tuple[str, str]]:
    """(version, base URL) of each server a local deployment record names. Knows the
    one-version record and, when present, a ``versions`` list of such records."""
    found = []
    for rec in [record, *record.get("versions", [])]:
        if "version" not in rec:
            continue
        host = rec.get("host") or "127.0.0.1"
        host = "127.0.0.1" if host == "0.0.0.0" else host
        url = f"http://{host}:{rec['admin_port']}" if rec.get("admin_port") else rec.get("url")
        if url and all(v != str(rec["version"]) for v, _ in found):
            found.append((str(rec["version"]), url))
    return found


def local_metrics(
    ctx: Any, *, transport: httpx.BaseTransport | None = None
) -> list[VersionMetrics]:
    """One VersionMetrics per live local version. Raises NotDeployed when there is
    no deployment; a server that does not answer is left out (its figures are gone)."""
    record = ctx.state.read_record(ctx.stage, "local")
    if not record:
        raise NotDeployed(
            f"nothing is deployed locally for stage {ctx.stage}", hint="run `slml deploy`"
        )
    key = ctx.config.local.env.get("SLML_API_KEY")
    headers = {"x-api-key": key} if key else {}
    out = []
    with httpx.Client(transport=transport, timeout=5.0, headers=headers) as client:
        for version, url in targets(record):
            try:
                response = client.get(f"{url}/metrics")
            except httpx.HTTPError:
                continue
            if response.status_code == 200:
                out.append(from_prometheus(response.text, version=version))
    return out
