"""slml.yaml: the project's one config.

``load_config(path)`` reads, validates and returns a frozen ``ProjectConfig``. Every
problem becomes a ``ConfigError`` whose message names the key path and what was
expected, e.g. ``slml.yaml: aws.memory: 12000 is above the maximum 10240``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from slml.config.bounded_yaml import MAX_BYTES, load_bounded
from slml.config.echo import clip, short
from slml.config.method import with_method_env
from slml.config.provider_sections import default, expected, installed, split
from slml.config.sections import (
    AwsConfig,
    AzureConfig,
    BatchingConfig,
    CaptureConfig,
    EnvVars,
    GcpConfig,
    LocalConfig,
    PackagesConfig,
    RequirementsConfig,
    RolloutConfig,
    SageMakerConfig,
    TrafficConfig,
)
from slml.errors import ConfigError

CONFIG_FILE = "slml.yaml"
DEFAULT_PROVIDER = "local"
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$")
_STAGE = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
MAX_PATH = 4096
MAX_ERRORS = 20  # lines of one config error; the rest are counted

__all__ = [
    "CONFIG_FILE",
    "AwsConfig",
    "AzureConfig",
    "GcpConfig",
    "LocalConfig",
    "ProjectConfig",
    "SageMakerConfig",
    "TrafficConfig",
    "load_config",
    "parse_config",
]


def _slug(value: str, pattern: re.Pattern[str], what: str, length: str, why: str) -> str:
    if not pattern.match(value):
        raise ValueError(
            f"{short(value)} is not a valid {what}: use {length} lowercase letters, digits and "
            f"dashes, starting with a letter ({why})"
        )
    return value


class ProjectConfig(BaseModel):
    """The whole of slml.yaml. Paths are resolved against the file's directory.

    Besides the keys below, each installed provider (``slml.providers`` entry points)
    has a section named after it, validated by the provider's ``config_model`` and read
    as an attribute (``config.aws``) or with ``section(name)``. Any other key is an
    error naming the installed providers."""

    model_config = ConfigDict(extra="allow", frozen=True)  # extras: provider sections only

    name: str = Field(description="project name: lowercase letters, digits, dashes")
    model: Path = Field(description="path to the model artifact directory")
    model_digest: str | None = Field(
        default=None,
        description="sha256:<hex> printed by `slml save`: build and deploy only that artifact",
    )
    provider: str = Field(default=DEFAULT_PROVIDER, description="an installed provider's name")
    stage: str = Field(default="dev", description="dev, prod, ...: a separate deployment")
    backend: str | None = Field(
        default=None,
        max_length=2048,
        description="Pulumi state backend URL (file://, s3://, https://); default .slml/pulumi",
    )
    rollout: RolloutConfig = Field(
        default_factory=RolloutConfig, description="canary, shadow and guard defaults"
    )
    traffic: TrafficConfig | None = Field(
        default=None, description="the traffic the preview's cost estimate assumes"
    )
    batching: BatchingConfig | None = Field(
        default=None, description="micro-batching of concurrent requests (opt-in)"
    )
    capture: CaptureConfig | None = Field(default=None, description="captured traffic")
    requirements: RequirementsConfig = Field(
        default_factory=RequirementsConfig,
        description="remove / replace / add requirements of the artifact when building, "
        "and whether their modules ship their sources (source_code) and their shared "
        "libraries their symbols (symbols)",
    )
    packages: PackagesConfig = Field(
        default_factory=PackagesConfig, description="package index, extra indexes, find-links"
    )
    env: EnvVars = Field(
        default_factory=dict,
        description="environment variables of the served model on every target (a "
        "provider's own env: adds to them and wins)",
    )
    method: str | None = Field(
        default=None,
        description="the model method to serve (predict, predict_proba, predict_log_proba, "
        "decision_function) instead of the one saved in the artifact; reaches every target "
        "as SLML_METHOD in its env",
    )

    @model_validator(mode="before")
    @classmethod
    def _sections(cls, data: Any) -> Any:
        """Built in code (``ProjectConfig(name=..., aws=AwsConfig(...))``): the provider
        sections are validated here; from slml.yaml, ``_validate`` did it already."""
        if not isinstance(data, dict):
            return data
        data = with_method_env(data)  # method: reaches every target as SLML_METHOD
        chosen = data.get("provider", DEFAULT_PROVIDER)
        plugins = installed()
        sections, problems = split(data, core=set(cls.model_fields), chosen=chosen, plugins=plugins)
        if problems:
            raise ValueError("; ".join(_format_error(p) for p in problems))
        return sections

    @field_validator("provider", mode="before")
    @classmethod
    def _provider(cls, value: Any) -> Any:
        names = installed().names
        if value not in names:  # the default first, then the installed ones sorted
            choices = sorted(names, key=lambda n: (n != DEFAULT_PROVIDER, n))
            raise ValueError(f"{short(value)} is not allowed; expected {expected(choices)}")
        return value

    @field_validator("model", mode="before")
    @classmethod
    def _model_path(cls, value: Any) -> Any:
        if isinstance(value, str) and len(value) > MAX_PATH:
            raise ValueError(f"a path of {len(value):,} characters; at most {MAX_PATH}")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _slug(value, _NAME, "name", "2-40", "cloud resource names are built from it")

    @field_validator("model_digest")
    @classmethod
    def _digest(cls, value: str | None) -> str | None:
        if value is not None and not _DIGEST.match(value):
            raise ValueError(
                f"{value!r} is not an artifact digest: expected sha256: and 64 lowercase hex "
                "digits, as `slml save` prints it"
            )
        return value

    @field_validator("stage")
    @classmethod
    def _stage(cls, value: str) -> str:
        return _slug(value, _STAGE, "stage", "1-20", "e.g. dev, prod, eu-test")

    def __getattr__(self, item: str) -> Any:
        """``config.aws``: a provider's section, its default when slml.yaml has none."""
        try:
            return super().__getattr__(item)  # type: ignore[misc]  # pydantic's, for extras
        except AttributeError:
            if item.startswith("_") or item not in installed().names:
                raise
            return self.section(item)

    def section(self, provider: str) -> BaseModel:
        """The config section of one provider. Raises ConfigError when that provider
        is not installed, or has no section here and no default one."""
        found = (self.model_extra or {}).get(provider)
        if isinstance(found, BaseModel):
            return found
        plugins = installed()
        if provider in plugins.names and (section := default(plugins.model(provider))):
            return section
        raise ConfigError(
            f"{CONFIG_FILE}: no {provider!r} section",
            hint=f"installed providers: {', '.join(plugins.names)}",
        )

    def with_overrides(
        self, *, provider: str | None = None, stage: str | None = None
    ) -> ProjectConfig:
        """A copy with the command line's ``--provider``/``--stage`` applied, validated."""
        data = self.model_dump()
        if provider is not None:
            data["provider"] = provider
        if stage is not None:
            data["stage"] = stage
        return _validate(data, source="command line")


def _format_location(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item in ("function-after", "function-before", "function-wrap"):
            continue
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def _format_error(err: dict[str, Any]) -> str:
    where = _format_location(err["loc"])
    kind = err["type"]
    given = err.get("input")
    if kind == "extra_forbidden" and len(err["loc"]) == 1:  # a top-level key
        return (
            f"{where}: unknown key (check the spelling; see `slml init` for every key; "
            f"providers' sections: {', '.join(installed().names)})"
        )
    if kind == "extra_forbidden":
        return f"{where}: unknown key (check the spelling; see `slml init` for every key)"
    if kind == "missing":
        return f"{where}: required key is missing"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"{where}: {short(given)} is not allowed; expected {expected}"
    msg = err["msg"].removeprefix("Value error, ")
    if kind in ("less_than_equal", "greater_than_equal", "less_than", "greater_than"):
        return f"{where}: {short(given)} is out of range: {msg.lower()}"
    if isinstance(given, dict | list) or kind == "value_error":
        return f"{where}: {msg}"  # a value error names the value itself, briefly
    return f"{where}: {msg} (got {short(given)})"


def _validate(data: Any, *, source: str) -> ProjectConfig:
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: expected a mapping of keys (name:, model:, provider:, ...), "
            f"got {type(data).__name__}",
            hint="run `slml init MODEL_DIR` to write a commented slml.yaml",
        )
    chosen = data.get("provider", DEFAULT_PROVIDER)
    core = set(ProjectConfig.model_fields)
    data, errors = split(data, core=core, chosen=chosen, plugins=installed())
    try:
        config = ProjectConfig.model_validate(data)
    except ValidationError as exc:
        errors = [dict(e) for e in exc.errors(include_url=False)] + errors
    if errors:
        lines = [clip(_format_error(e)) for e in errors[:MAX_ERRORS]]
        if len(errors) > MAX_ERRORS:
            lines.append(f"... and {len(errors) - MAX_ERRORS} more")
        raise ConfigError(
            f"{source} is not valid:\n  " + "\n  ".join(lines),
            hint="see `slml init --help`, or the README's configuration section",
        ) from None
    return config


def parse_config(
    text: str, *, source: str = CONFIG_FILE, base_dir: Path | None = None
) -> ProjectConfig:
    """Validate slml.yaml's text; relative ``model`` paths resolve against ``base_dir``."""
    try:
        data = load_bounded(text, source=source)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "malformed YAML"
        raise ConfigError(f"{source}: not valid YAML{where}: {clip(problem)}") from None
    if data is None:
        data = {}
    config = _validate(data, source=source)
    if base_dir is not None and not config.model.is_absolute():
        config = config.model_copy(update={"model": (base_dir / config.model).resolve()})
    return config


def load_config(path: Path) -> ProjectConfig:
    """Read and validate slml.yaml at ``path``. Raises ConfigError naming what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"no {path.name} found at {path.parent.resolve()}",
            hint="run `slml init MODEL_DIR` here, or pass --config PATH",
        )
    try:
        with path.open("rb") as file:  # read at most the limit: the file may be any size
            raw = file.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise ConfigError(
                f"{path.name} is over the {MAX_BYTES:,} bytes a config may be",
                hint="slml.yaml is a short file: see `slml init` for its shape",
            )
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    return parse_config(text, source=str(path.name), base_dir=path.parent.resolve())
