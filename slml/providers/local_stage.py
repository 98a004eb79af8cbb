"""The state of one local stage beyond its record: the record's expected shape, the
pending deploy, and every server of the stage found by its marker.

- ``read_record`` returns the local record only when it has the fields slml relies on
  (a wrong-shaped one raises RecordUnreadable, pointing at ``slml destroy --force``).
- ``.slml/local/<stage>/pending.json`` names the deploy in progress (version, then
  pid) before its server exists; a deploy killed mid-way leaves it behind, and the next
  command of the stage records that in the history and clears it.
- ``strays`` are the stage's servers the record does not name (``find_servers`` by the
  ``SLML_LOCAL_DEPLOYMENT`` marker, never by name); ``stop_all`` stops a set of them and
  says which would not stop.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import shutil
from pathlib import Path
from typing import Any

from slml.errors import DeployError
from slml.ledger import DeploymentRecord, HistoryEvent, Ledger
from slml.providers import local_process as proc
from slml.providers.base import ProviderContext
from slml.state import RecordUnreadable, now_iso, write_json_atomic

PROVIDER = "local"
_VDIR = re.compile(r"^v(\d+)$")
_FIELDS = {"version": int, "pid": int, "port": int, "url": str}


def read_record(ctx: ProviderContext) -> DeploymentRecord | None:
    """The stage's local record (through the ledger, migrated), None when not deployed.
    Raises RecordUnreadable when it cannot be read or lacks a field of the expected type."""
    raw = ctx.state.read_record(ctx.stage, PROVIDER)
    if raw is None:
        return None
    for key, kind in _FIELDS.items():
        value = raw.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            path = ctx.state.record_path(ctx.stage, PROVIDER)
            raise RecordUnreadable(path, f"{key!r} is missing or not a {kind.__name__}")
    return Ledger(ctx.state).read(ctx.stage, PROVIDER)


def kept_pids(record: DeploymentRecord | None) -> set[int]:
    """Every process the record keeps running (servers of live versions, the router)."""
    if record is None:
        return set()
    return {*record.pids, *([record.pid] if record.pid else [])}


def version_dir(ctx: ProviderContext, version: int) -> Path:
    return ctx.state.stage_dir(PROVIDER, ctx.stage) / f"v{version}"


def versions(ctx: ProviderContext) -> list[int]:
    """Versions whose bundle copy is on disk, ascending."""
    found = []
    for path in ctx.state.stage_dir(PROVIDER, ctx.stage).glob("v*"):
        match = _VDIR.match(path.name)
        if match and path.is_dir():
            found.append(int(match.group(1)))
    return sorted(found)


def marker(ctx: ProviderContext) -> str:
    return proc.stage_marker(ctx.project_dir, ctx.stage)


def servers(ctx: ProviderContext) -> list[int]:
    """Every live server of the stage (by marker)."""
    return proc.find_servers(marker(ctx))


def strays(ctx: ProviderContext, record: DeploymentRecord | None) -> list[int]:
    """The stage's live servers that ``record`` does not name."""
    keep = kept_pids(record)
    return [pid for pid in servers(ctx) if pid not in keep]


def stop_all(pids: list[int], *, grace: float) -> list[int]:
    """Stop each server (SIGTERM, then SIGKILL after ``grace``); the pids still alive."""
    for pid in pids:
        proc.stop_server(pid, pid, grace=grace)
    return [pid for pid in pids if proc.is_our_server(pid)]


def sweep(ctx: ProviderContext, record: DeploymentRecord | None, *, grace: float) -> list[str]:
    """Before a deploy: stop the stage's servers ``record`` does not name (left by a
    killed deploy) and note that deploy in the history. Returns notes for the result.
    Raises DeployError when one will not stop."""
    found = strays(ctx, record)
    if stop_all(found, grace=grace):
        raise DeployError(
            f"servers of stage {ctx.stage} outside the record would not stop: {found}",
            hint="stop them (kill -9 <pid>) and deploy again",
        )
    note = note_killed_deploy(ctx, found)
    if note:
        ctx.reporter.detail(note)
    return [note] if note else []


def stop_for_destroy(
    ctx: ProviderContext, record: DeploymentRecord | None, others: list[int], *, grace: float
) -> None:
    """Stop the recorded server and ``others``; raises DeployError (so that nothing is
    deleted) when any is still alive afterwards."""
    alive = []
    if record and record.pid:
        if not proc.stop_server(record.pid, record.pgid, grace=grace):
            ctx.reporter.detail(f"version {record.version} was not running")
        alive += [record.pid] if proc.is_our_server(record.pid) else []
    alive += stop_all(others, grace=grace)
    others_kept = kept_pids(record) & set(others)
    if others_kept:
        ctx.reporter.detail(f"stopped the other live versions and the router "
                            f"{', '.join(map(str, sorted(others_kept)))}")
    if unrecorded := sorted(set(others) - others_kept):
        ctx.reporter.detail(f"stopped unrecorded server(s) {', '.join(map(str, unrecorded))}")
    if alive:
        raise DeployError(
            f"server(s) {alive} of stage {ctx.stage} would not stop; nothing was deleted",
            hint="stop them (kill -9 <pid>) and run `slml destroy` again",
        )


def forget(
    ctx: ProviderContext, record: DeploymentRecord | None, *, unreadable: bool,
    was_running: bool, bundles: list[Path],
) -> None:  # fmt: skip
    """Once every server is stopped: delete the record (set an unreadable one aside),
    note the destroy in the history, delete the kept bundles and the pending file."""
    ledger = Ledger(ctx.state)
    if unreadable:
        aside = ledger.set_aside(ctx.stage, PROVIDER)
        ctx.reporter.detail(f"set the unreadable record aside as {aside}")
    else:
        ledger.delete(ctx.stage, PROVIDER)
    seen = {k: getattr(record, k) for k in ("version", "url", "pid", "model_sha256",
                                             "lock_hash")} if record else {}  # fmt: skip
    ledger.append(HistoryEvent(event="destroy", provider=PROVIDER, stage=ctx.stage, **seen,
                               was_running=was_running, forced=unreadable))  # fmt: skip
    for bundle in bundles:
        shutil.rmtree(bundle, ignore_errors=True)
    clear_pending(ctx)


# -- the pending deploy ------------------------------------------------------------------
def _pending_path(ctx: ProviderContext) -> Path:
    return ctx.state.stage_dir(PROVIDER, ctx.stage) / "pending.json"


def write_pending(ctx: ProviderContext, version: int, **more: Any) -> None:
    write_json_atomic(
        _pending_path(ctx), {"version": version, "started_at": now_iso(), **more}
    )


def read_pending(ctx: ProviderContext) -> dict[str, Any] | None:
    """The pending deploy left by a killed one (None when none, or unreadable)."""
    with contextlib.suppress(OSError, ValueError):
        pending = json.loads(_pending_path(ctx).read_text(encoding="utf-8"))
        return pending if isinstance(pending, dict) else None
    return None


def clear_pending(ctx: ProviderContext) -> None:
    with contextlib.suppress(FileNotFoundError):
        _pending_path(ctx).unlink()


def pending_version(ctx: ProviderContext) -> list[int]:
    version = (read_pending(ctx) or {}).get("version")
    return [version] if isinstance(version, int) else []


def note_killed_deploy(ctx: ProviderContext, stopped: list[int]) -> str | None:
    """Record a deploy that was killed mid-way (its pending file) in the history, with
    the servers just stopped; clear it. Returns a note, None when there was none."""
    pending = read_pending(ctx)
    if pending is None and not stopped:
        return None
    version = (pending or {}).get("version")
    Ledger(ctx.state).append(HistoryEvent(
        event="deploy-killed", provider=PROVIDER, stage=ctx.stage,
        version=version if isinstance(version, int) else None, stopped=stopped,
        error="the deploy was killed before it finished"))  # fmt: skip
    clear_pending(ctx)
    what = f"a deploy of version {version} was killed" if pending else "found servers"
    shown = ", ".join(map(str, stopped))
    return f"{what}; stopped its unrecorded server(s) {shown}" if stopped else what


# -- warnings ------------------------------------------------------------------------------
def host_warnings(host: str) -> list[str]:
    """A plain-words warning when the server would listen beyond this machine."""
    if host == "localhost" or _is_loopback(host):
        return []
    return [
        f"local.host is {host}: the server will accept connections from other machines "
        "on your network, with no authentication. Use 127.0.0.1 unless you mean it."
    ]


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
