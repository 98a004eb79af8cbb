"""The deployment ledger: typed, versioned deployment records and history events.

Every record and every history event slml writes goes through ``Ledger``; providers
never write ``.slml/deployments`` or ``.slml/history.jsonl`` by hand. Each file carries
``schema_version`` (``SCHEMA_VERSION``); a file written before versioning (no
``schema_version``) still reads, is migrated in memory (a single live version becomes
the stage's ``traffic``; a local failure's ``reason`` becomes ``error``) and is written
back in the current schema the next time the ledger writes it.

A record describes what serves one stage of one provider: ``traffic`` lists the live
versions with their share and role (``slml.rollout.LiveVersion``), ``versions`` holds
per live version what promotion and rollback need (artifact digest, dependency lock
hash, the archived artifact, the local server). ``version``/``url``/``model_sha256``
stay those of the primary, so readers written for one version keep working.

Locking is not done here: ``slml.api`` holds the project lock (``ProjectState.lock``,
reentrant) around every command that writes, and the providers take it too when they
are called directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from slml.errors import DeployError
from slml.rollout import LiveVersion, Role
from slml.state import ProjectState, RecordUnreadable, now_iso, who

SCHEMA_VERSION = 2


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")  # fields of newer slml versions are kept


class _Built(_Model):
    """What was built and deployed: the artifact digest and the dependency lock hash
    (what ``promote --from`` checks), and the archived artifact (Pulumi providers)."""

    model_sha256: str | None = None
    lock_hash: str | None = None
    artifact: str | None = None


class Live(_Model):
    """One entry of ``traffic`` (the JSON form of ``slml.rollout.LiveVersion``)."""

    version: int
    percent: float
    role: Role
    ref: str | None = None

    def live(self) -> LiveVersion:
        return LiveVersion(version=self.version, percent=self.percent, role=self.role,
                           ref=self.ref)  # fmt: skip

    @classmethod
    def of(cls, live: LiveVersion) -> Live:
        return cls(version=live.version, percent=live.percent, role=live.role, ref=live.ref)


class VersionInfo(_Built):
    """What one live version is: enough to promote it to another stage byte for byte
    (``model_sha256``, ``lock_hash``, ``artifact``) and, on local, to reach its server."""

    version: int
    bundle: str | None = None  # local: the kept bundle copy
    env: str | None = None  # local: the environment it runs in
    pid: int | None = None  # local: the server
    pgid: int | None = None
    admin_port: int | None = None  # local: where the router reaches it
    log: str | None = None
    deployed_at: str | None = None
    port: int | None = None  # local: the stable port it was started for
    model: dict[str, Any] | None = None  # local: the bundle's model info


class StackOutputs(_Model):
    """The stack outputs every Pulumi program exports. Each target reads its own with a
    subclass naming its outputs as fields (``slml.providers.outputs``); fields this
    model does not name are kept (``model_extra``)."""

    url: str = ""
    region: str | None = None
    traffic: list[Live] = Field(default_factory=list)  # rollouts: the live set
    versions: dict[str, str] = Field(default_factory=dict)  # version -> handle, lately

    @classmethod
    def of(cls, record: dict[str, Any] | None) -> Self:
        """The outputs of a deployment record (a dict as ``ProjectState`` reads it);
        defaults when there is no record (a record from an older slml lacks fields,
        which take defaults too). Raises DeployError when a recorded output has the
        wrong type (a hand-edited record), naming it."""
        raw = (record or {}).get("outputs") or {}
        if not isinstance(raw, dict):
            raise DeployError(f"the recorded stack outputs have an unexpected shape: a JSON "
                              f"{type(raw).__name__}, not an object",
                              hint="run `slml deploy` again to record the stack's outputs "
                              "afresh")  # fmt: skip
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            where = ".".join(str(p) for p in exc.errors()[0]["loc"])
            raise DeployError(
                f"the recorded stack output {where} has an unexpected shape: "
                f"{exc.errors()[0]['msg']}",
                hint="run `slml deploy` again to record the stack's outputs afresh",
            ) from None

    def live(self) -> tuple[LiveVersion, ...]:
        return tuple(t.live() for t in self.traffic)

    def need(self, field: str) -> str:
        """The value of output ``field``; DeployError when the record has none."""
        value = getattr(self, field, None)
        if not value:
            raise DeployError(
                f"the deployment record has no {field} output (written by an older slml, or "
                "edited by hand)", hint="run `slml deploy` again to record it")  # fmt: skip
        return str(value)


class DeploymentRecord(_Built):
    """The current deployment of one stage and provider."""

    schema_version: int = SCHEMA_VERSION
    name: str | None = None
    stage: str
    provider: str
    version: int  # the primary's (as are the digest, lock hash and artifact)
    url: str
    deployed_at: str = Field(default_factory=now_iso)
    deployed_by: str = Field(default_factory=who)
    traffic: list[Live] = Field(default_factory=list)
    versions: dict[str, VersionInfo] = Field(default_factory=dict)
    # Pulumi providers
    stack: str | None = None
    outputs: StackOutputs = Field(default_factory=StackOutputs)
    # local
    host: str | None = None
    port: int | None = None
    pid: int | None = None  # the primary's server (or the only one)
    pgid: int | None = None
    admin_port: int | None = None
    router_pid: int | None = None  # local: the traffic router on the stable port
    router_admin_port: int | None = None
    pids: list[int] = Field(default_factory=list)  # local: every process the record keeps
    sticky_header: str | None = None  # local: the header whose hash picks the version
    bundle: str | None = None
    env: str | None = None
    log: str | None = None
    model: dict[str, Any] | None = None

    def live(self) -> tuple[LiveVersion, ...]:
        return tuple(t.live() for t in self.traffic)

    def info(self, version: int) -> VersionInfo | None:
        return self.versions.get(str(version))

    def by_role(self, role: Role) -> LiveVersion | None:
        return next((t.live() for t in self.traffic if t.role == role), None)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


EventKind = Literal[
    "deploy", "deploy-failed", "deploy-interrupted", "deploy-killed", "destroy", "canary",
    "shadow", "promote", "rollback", "guard-rollback", "guard-held", "shift",
]


class HistoryEvent(_Built):
    """One line of ``.slml/history.jsonl``. A failure's cause is always ``error``."""

    schema_version: int = SCHEMA_VERSION
    event: str
    stage: str | None = None
    provider: str | None = None
    version: int | None = None
    at: str = Field(default_factory=now_iso)
    by: str = Field(default_factory=who)
    url: str | None = None
    error: str | None = None
    pid: int | None = None
    traffic: list[Live] | None = None
    figures: dict[str, Any] | None = None  # the guard's measurements
    was_running: bool | None = None  # destroy
    forced: bool | None = None  # destroy --force
    stopped: list[int] | None = None  # deploy-killed: the servers it left, stopped since

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def migrate_record(data: dict[str, Any]) -> dict[str, Any]:
    """An unversioned (schema 1) record in the current shape."""
    if data.get("schema_version", 1) >= SCHEMA_VERSION:
        return data
    data = {**data, "schema_version": SCHEMA_VERSION}
    version = data.get("version")
    if not data.get("traffic") and isinstance(version, int):
        ref = str(data["admin_port"]) if isinstance(data.get("admin_port"), int) else None
        data["traffic"] = [{"version": version, "percent": 100.0, "role": "primary", "ref": ref}]
    if not data.get("versions") and isinstance(version, int):
        keys = ("model_sha256", "lock_hash", "artifact", "bundle", "env", "pid", "pgid",
                "admin_port", "log", "deployed_at")  # fmt: skip
        data["versions"] = {str(version): {"version": version,
                                           **{k: data[k] for k in keys if k in data}}}
    if isinstance(data.get("pid"), int) and not data.get("pids"):
        data["pids"] = [data["pid"]]
    return data


def migrate_event(data: dict[str, Any]) -> dict[str, Any]:
    """An unversioned history line in the current shape (``reason`` → ``error``)."""
    if "reason" in data and "error" not in data:
        data = {**data, "error": data["reason"]}
    return data


class Ledger:
    """Typed access to the records and history of a project's ``.slml/``."""

    def __init__(self, state: ProjectState) -> None:
        self.state = state

    # -- records -----------------------------------------------------------------------
    def read(self, stage: str, provider: str) -> DeploymentRecord | None:
        """The current record (migrated), None when not deployed. Raises RecordUnreadable
        when the file cannot be read or does not have a record's shape."""
        data = self.state.read_record(stage, provider)
        if data is None:
            return None
        data.setdefault("stage", stage)
        data.setdefault("provider", provider)
        try:
            return DeploymentRecord.model_validate(migrate_record(data))
        except ValueError as exc:
            problem = str(exc).splitlines()
            shown = "; ".join(problem[1:3]) if len(problem) > 1 else str(exc)
            raise RecordUnreadable(self.state.record_path(stage, provider), shown) from None

    def write(self, record: DeploymentRecord) -> None:
        """Replace the stage's record atomically, in the current schema."""
        record.schema_version = SCHEMA_VERSION
        self.state.write_record(record.stage, record.provider, record.to_json())

    def delete(self, stage: str, provider: str) -> None:
        self.state.delete_record(stage, provider)

    def set_aside(self, stage: str, provider: str) -> Path | None:
        """Rename an unreadable record aside (StateDir.set_aside_record): its new path."""
        return self.state.set_aside_record(stage, provider)

    # -- history -----------------------------------------------------------------------
    def append(self, event: HistoryEvent) -> None:
        self.state.append_history(event.to_json())

    def history(self) -> list[HistoryEvent]:
        """Every event that has the shape of one, oldest first."""
        events = []
        for data in self.state.history():
            try:
                events.append(HistoryEvent.model_validate(migrate_event(data)))
            except ValueError:
                continue
        return events

    def rollback_target(
        self, stage: str, provider: str, *, version: int | None, candidates: list[int],
    ) -> int:
        """The version to roll back to: ``version`` if given and among ``candidates``
        (versions that can be deployed again), else the newest candidate below the
        current primary. Raises DeployError listing the candidates otherwise."""
        try:
            record = self.read(stage, provider)
        except RecordUnreadable:
            record = None
        current = record.version if record else None
        kept = sorted(v for v in set(candidates) if v != current)
        if version is None:
            older = [v for v in kept if current is None or v < current]
            chosen = older[-1] if older else None
        else:
            chosen = version if version in kept else None
        if chosen is None:
            wanted = f"version {version}" if version is not None else "an earlier version"
            listed = ", ".join(map(str, kept)) or "none"
            raise DeployError(
                f"no {provider} deployment of {wanted} in stage {stage} to roll back to "
                f"(versions that can be deployed again: {listed})",
                hint="`slml history` lists every deploy; deploy the model again instead",
            )
        return chosen

    def deployed(self, stage: str, provider: str) -> list[HistoryEvent]:
        """The successful deploy events of a stage, oldest first."""
        return [e for e in self.history()
                if e.event == "deploy" and e.stage == stage and e.provider == provider]
