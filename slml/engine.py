"""The Pulumi engine: an offline plan under Pulumi's mocks, and the Automation API.

``offline_plan(program, project=, stack=)`` runs a Pulumi program in this process under
``pulumi.runtime.set_mocks(..., preview=True)`` and returns what it would create: each
resource's type token, logical name, parent, inputs (keys in the Python SDK's
snake_case) and the inputs only known after deploy. No CLI, no credentials, no cloud
call. It runs inside a copied ``contextvars`` context (Pulumi keeps its runtime settings
in context variables), so it is re-entrant and leaves no state behind for other
programs or for tests decorated with ``@pulumi.runtime.test``.

``PulumiEngine`` drives ``pulumi.automation`` with an inline program: a local file
backend under ``.slml/pulumi`` unless a backend URL is configured, and the passphrase
secrets provider. The passphrase comes from ``PULUMI_CONFIG_PASSPHRASE`` or
``PULUMI_CONFIG_PASSPHRASE_FILE`` (which must exist); failing both, one is generated
at first use and kept in ``.slml/pulumi/passphrase`` (mode 0600, written whole or not at
all, kept out of git by ``.slml/.gitignore``; an empty one is refused). Keep that file:
without it the stack's secrets (e.g. the API key) cannot be decrypted. It needs the ``pulumi`` CLI;
without it every call raises ``ProviderUnavailable``.
"""

from __future__ import annotations

import contextvars
import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slml.errors import DeployError, ProviderUnavailable
from slml.pipeline import Plan, PlannedResource
from slml.state import read_or_create_secret, read_secret

Program = Callable[[], None]
OutputSink = Callable[[str], None]

# Outputs the clouds compute at create time. The mocks leave them out during preview, so
# anything that depends on them shows as "known after deploy", as in a real preview.
COMPUTED_OUTPUTS = frozenset(
    {
        "id", "arn", "invokeArn", "qualifiedArn", "qualifiedInvokeArn", "executionArn",
        "apiEndpoint", "url", "uri", "functionUrl", "version", "layerArn", "urn",
        "defaultHostname", "principalId", "location", "selfLink", "uniqueId",
        "invokeUrl", "endpoint", "primaryEndpoints",
    }
)  # fmt: skip

INSTALL_HINT = (
    "install the Pulumi CLI (https://www.pulumi.com/docs/install/, e.g. "
    "`curl -fsSL https://get.pulumi.com | sh`), then retry; `slml preview` works "
    "without it and prints an offline plan"
)

# Maps whose keys are the user's own (never renamed): tags, environment variables, labels.
USER_MAPS = frozenset(
    {
        "tags",
        "tagsAll",
        "variables",
        "labels",
        "annotations",
        "appSettings",
        "envVars",
        "environment",
    }
)
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")
SECRET_MARK = "[secret]"
UNKNOWN_MARK = "(known after deploy)"


def pulumi_cli_available(which: Callable[[str], str | None] = shutil.which) -> bool:
    """True when the ``pulumi`` binary is on PATH (or ``PULUMI_HOME``'s bin dir)."""
    if which("pulumi"):
        return True
    home = os.environ.get("PULUMI_HOME", str(Path.home() / ".pulumi"))
    return (Path(home) / "bin" / "pulumi").is_file()


def snake(key: str) -> str:
    """``memorySize`` → ``memory_size``; keys already snake_case are unchanged."""
    return _CAMEL.sub(r"_\1", key).lower()


# -- offline plan ------------------------------------------------------------------------


def _describe_asset(value: Any) -> str | None:
    """``FileArchive(/path)`` and the like for Pulumi assets and archives, else None."""
    from pulumi import asset

    if isinstance(value, asset.FileArchive | asset.FileAsset):
        return f"{type(value).__name__}({value.path})"
    if isinstance(value, asset.AssetArchive):
        return f"AssetArchive({', '.join(sorted(value.assets))})"
    if isinstance(value, asset.Asset | asset.Archive):
        return type(value).__name__
    return None


def _clean(value: Any, *, user_map: bool = False) -> tuple[Any, bool]:
    """Plain data for an input value, and whether any part is unknown until deploy.
    Object keys become snake_case, except in user maps (tags, environment variables)."""
    from pulumi.output import Unknown
    from pulumi.runtime import rpc

    if isinstance(value, Unknown) or (isinstance(value, str) and value == rpc.UNKNOWN):
        return UNKNOWN_MARK, True
    if rpc.is_rpc_secret(value):
        return SECRET_MARK, False
    if isinstance(value, dict):
        out, unknown = {}, False
        for key, item in value.items():
            name = str(key) if user_map else snake(str(key))
            out[name], part = _clean(item, user_map=str(key) in USER_MAPS)
            unknown = unknown or part
        return out, unknown
    if isinstance(value, list | tuple):
        cleaned = [_clean(item) for item in value]
        return [c for c, _ in cleaned], any(u for _, u in cleaned)
    if isinstance(value, float) and value.is_integer():
        return int(value), False  # protobuf carries every number as a double
    if isinstance(value, str | int | float | bool) or value is None:
        return value, False
    return _describe_asset(value) or str(value), False


def _record(typ: str, name: str, inputs: dict[str, Any], parent: str | None) -> PlannedResource:
    cleaned: dict[str, Any] = {}
    unknowns: list[str] = []
    for key in sorted(inputs):
        if key.startswith("__"):
            continue
        value, unknown = _clean(inputs[key], user_map=key in USER_MAPS)
        cleaned[snake(key)] = value
        if unknown:
            unknowns.append(snake(key))
    return PlannedResource(
        type=typ, name=name, inputs=cleaned, unknowns=tuple(unknowns), parent=parent
    )


def _mock_classes() -> tuple[type, type]:
    """The Mocks/MockMonitor subclasses, built lazily so importing slml needs no pulumi."""
    import pulumi

    class RecordingMocks(pulumi.runtime.Mocks):
        def __init__(self) -> None:
            self.parents: dict[str, str | None] = {}
            self.resources: list[PlannedResource] = []

        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
            parent = self.parents.get(f"{args.typ}::{args.name}")
            self.resources.append(_record(args.typ, args.name, dict(args.inputs), parent))
            outputs = {k: v for k, v in args.inputs.items() if k not in COMPUTED_OUTPUTS}
            return "", outputs  # an empty id is unknown during a preview, as in a real one

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list]:
            return {}, []

    class ParentMonitor(pulumi.runtime.mocks.MockMonitor):
        """Notes each registration's parent (MockResourceArgs does not carry it)."""

        def RegisterResource(self, request: Any) -> Any:
            parent = request.parent.split("::")[-1] if request.parent else None
            if parent and "::pulumi:pulumi:Stack::" in request.parent:
                parent = None
            self.mocks.parents[f"{request.type}::{request.name}"] = parent
            return super().RegisterResource(request)

    return RecordingMocks, ParentMonitor


def _run_mocked(program: Program, project: str, stack: str) -> tuple[PlannedResource, ...]:
    import pulumi
    from pulumi.runtime import settings
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    recording_cls, monitor_cls = _mock_classes()
    mocks = recording_cls()
    settings.reset_options(project=project, stack=stack, preview=True)
    pulumi.runtime.set_mocks(
        mocks, project=project, stack=stack, preview=True, monitor=monitor_cls(mocks)
    )
    _sync_await(run_pulumi_func(program))
    return tuple(mocks.resources)


def offline_plan(program: Program, *, project: str, stack: str) -> tuple[PlannedResource, ...]:
    """Run ``program`` under Pulumi's mocks (preview mode) and return its resources in
    registration order. Blocking, re-entrant, no cloud calls; errors raised by the
    program propagate unchanged (a bug in a program is not a deploy error)."""
    context = contextvars.copy_context()
    return context.run(_run_mocked, program, project, stack)


# -- the Automation API ------------------------------------------------------------------


def resolve_passphrase(pulumi_dir: Path, environ: Mapping[str, str] | None = None) -> str:
    """The stack's secrets passphrase: ``PULUMI_CONFIG_PASSPHRASE``, else the file named
    by ``PULUMI_CONFIG_PASSPHRASE_FILE`` (which must exist: a missing one is an error,
    never a new passphrase), else ``<pulumi_dir>/passphrase`` (created with a random
    value, whole or not at all, mode 0600, on first use). Raises DeployError naming the
    file when it is missing, empty or malformed."""
    env = os.environ if environ is None else environ
    if env.get("PULUMI_CONFIG_PASSPHRASE"):
        return env["PULUMI_CONFIG_PASSPHRASE"]
    named = env.get("PULUMI_CONFIG_PASSPHRASE_FILE")
    if not named:
        return read_or_create_secret(pulumi_dir / "passphrase")
    path = Path(named)
    if not path.is_file():
        raise DeployError(
            f"PULUMI_CONFIG_PASSPHRASE_FILE names {path}, which does not exist",
            hint="point it at the file holding this stack's passphrase, or unset it to use "
            f"{pulumi_dir / 'passphrase'}",
        )
    return read_secret(path)


def passphrase_file(pulumi_dir: Path, environ: Mapping[str, str] | None = None) -> Path | None:
    """The file the passphrase comes from (None when ``PULUMI_CONFIG_PASSPHRASE`` is set)."""
    env = os.environ if environ is None else environ
    if env.get("PULUMI_CONFIG_PASSPHRASE"):
        return None
    named = env.get("PULUMI_CONFIG_PASSPHRASE_FILE")
    return Path(named) if named else pulumi_dir / "passphrase"


@dataclass(frozen=True)
class PluginSpec:
    """A provider plugin the inline program needs, e.g. ``PluginSpec("aws", "v7.51.1")``."""

    name: str
    version: str


def _default_stack_factory(**kwargs: Any) -> Any:
    from pulumi import automation as auto

    return auto.create_or_select_stack(**kwargs)


class PulumiEngine:
    """One Pulumi stack driven through the Automation API with an inline program.

    ``stack_factory`` receives ``create_or_select_stack``'s keyword arguments and returns
    a stack; tests pass a fake. Every method is blocking and raises
    ``ProviderUnavailable`` when the CLI is missing, ``DeployError`` when Pulumi fails.
    """

    def __init__(
        self,
        project: str,
        stack: str,
        *,
        work_dir: Path,
        backend_url: str | None = None,
        plugins: tuple[PluginSpec, ...] = (),
        config: dict[str, str] | None = None,
        stack_factory: Callable[..., Any] = _default_stack_factory,
        debug: bool = False,
    ) -> None:
        self.project = project
        self.stack_name = stack
        self.pulumi_dir = Path(work_dir) / ".slml" / "pulumi"
        self.backend_url = backend_url or self.pulumi_dir.resolve().as_uri()
        self.plugins = plugins
        self.config = dict(config or {})
        self._factory = stack_factory
        self.debug = debug

    def _logging(self) -> dict[str, Any]:
        """With ``--debug`` Pulumi streams its debug log, and a failure shows all of it."""
        return {"debug": True, "log_to_std_err": True} if self.debug else {}

    def _stack(self, program: Program) -> Any:
        from pulumi import automation as auto

        if self.backend_url.startswith("file://"):
            Path(self.backend_url.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
        env = {"PULUMI_CONFIG_PASSPHRASE": resolve_passphrase(self.pulumi_dir)}
        settings = auto.ProjectSettings(
            name=self.project, runtime="python", backend=auto.ProjectBackend(url=self.backend_url)
        )
        opts = auto.LocalWorkspaceOptions(
            project_settings=settings,
            secrets_provider="passphrase",
            env_vars=env,
            stack_settings={self.stack_name: auto.StackSettings(secrets_provider="passphrase")},
        )
        try:
            stack = self._factory(
                stack_name=self.stack_name, project_name=self.project, program=program, opts=opts
            )
        except FileNotFoundError:
            raise ProviderUnavailable(
                "the Pulumi CLI (`pulumi`) is not installed or not on PATH", hint=INSTALL_HINT
            ) from None
        for plugin in self.plugins:
            stack.workspace.install_plugin(plugin.name, plugin.version)
        for key, value in self.config.items():
            stack.set_config(key, auto.ConfigValue(value=value))
        return stack

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        from pulumi import automation as auto

        try:
            yield
        except auto.errors.CommandError as exc:
            text = str(exc).strip() if self.debug else _tail(str(exc))
            raise DeployError(
                f"pulumi {action} failed for stack {self.stack_name}: {text}",
                hint="fix the cause above and retry"
                + ("" if self.debug else "; run with --debug for Pulumi's full log"),
            ) from None

    def preview(self, program: Program, *, provider: str, stage: str) -> Plan:
        """A real preview against the stack's state: which resources change and how."""
        stack = self._stack(program)
        events: list[Any] = []
        with self._errors("preview"):
            stack.preview(on_event=events.append, **self._logging())
        steps = [e for e in events if _is_step(e)]
        resources = tuple(_step_resource(e) for e in steps if _op(e) is not None)
        return Plan(provider=provider, stage=stage, kind="pulumi", resources=resources)

    def up(self, program: Program, *, on_output: OutputSink | None = None) -> dict[str, Any]:
        """Create or update the stack; returns its outputs as plain values."""
        stack = self._stack(program)
        with self._errors("up"):
            result = stack.up(on_output=on_output, **self._logging())
        return {key: out.value for key, out in result.outputs.items()}

    def destroy(self, *, on_output: OutputSink | None = None) -> None:
        """Delete every resource of the stack (idempotent); the stack itself is kept."""
        stack = self._stack(lambda: None)
        with self._errors("destroy"):
            stack.destroy(on_output=on_output, **self._logging())


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _is_step(event: Any) -> bool:
    meta = getattr(getattr(event, "resource_pre_event", None), "metadata", None)
    return meta is not None and meta.type != "pulumi:pulumi:Stack"


def _step_resource(event: Any) -> PlannedResource:
    meta = event.resource_pre_event.metadata
    new = meta.new or meta.old
    inputs = dict(getattr(new, "inputs", None) or {})
    planned = _record(meta.type, meta.urn.split("::")[-1], inputs, _urn_name(new))
    return PlannedResource(
        type=planned.type,
        name=planned.name,
        inputs=planned.inputs,
        unknowns=planned.unknowns,
        op=_op(event) or "update",
        parent=planned.parent,
    )


_OPS = {
    "create": "create",
    "update": "update",
    "replace": "replace",
    "create-replacement": "replace",
    "delete": "delete",
    "same": "same",
    "read": "same",
    "refresh": "same",
    "import": "create",
}


def _op(event: Any) -> str | None:
    """The plan op of a step event; None for steps that echo another (delete-replaced)."""
    op = event.resource_pre_event.metadata.op
    return _OPS.get(getattr(op, "value", str(op)))


def _urn_name(state: Any) -> str | None:
    parent = getattr(state, "parent", None)
    if not parent or "pulumi:pulumi:Stack" in parent:
        return None
    return parent.split("::")[-1]
