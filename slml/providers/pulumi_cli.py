"""The Pulumi CLI when it is missing: offer to install a pinned version into slml's
cache through Pulumi's Automation API (``PulumiCommand.install``), instead of stopping.

``ensure_cli(reporter)`` is what a cloud deploy calls when ``pulumi`` is not on PATH:

- a CLI slml installed before (``<cache>/pulumi/<version>/bin/pulumi``) is used at once;
- else with consent it installs one there: ``SLML_INSTALL_PULUMI=yes`` (for scripts and
  CI; ``--yes`` on deploy, promote, rollback, guard and destroy sets it through
  ``allow_install``), or a yes at the prompt when stdin and stderr are a terminal;
- else it declines, and the caller raises ProviderUnavailable with ``HINT``.

Using the CLI means putting its ``bin`` directory first on this process's PATH, where
the Automation API looks. Previews never call this: without a CLI they plan offline.
The version is the installed ``pulumi`` SDK's (what the Automation API is tested with).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, MutableMapping
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from slml.errors import ProviderUnavailable

CONSENT_VAR = "SLML_INSTALL_PULUMI"
HINT = (
    f"pass --yes (or set {CONSENT_VAR}=yes) to let slml install the Pulumi CLI into its "
    "cache (or answer yes at the prompt), or install it yourself "
    "(https://www.pulumi.com/docs/install/); "
    "`slml preview` works without it and prints an offline plan"
)
Decision = Literal["path", "cached", "install", "ask", "decline"]


def pinned_version() -> str:
    """The CLI version slml installs: the same as the pulumi SDK here."""
    return metadata.version("pulumi")


def install_root(cache: Path, version: str) -> Path:
    """Where slml keeps its own Pulumi CLI of ``version``."""
    return cache / "pulumi" / version


def consent(env: MutableMapping[str, str]) -> bool | None:
    """True/False when ``SLML_INSTALL_PULUMI`` says yes/no, None when unset."""
    raw = env.get(CONSENT_VAR, "").strip().lower()
    if not raw:
        return None
    return raw in ("1", "yes", "y", "true", "on")


def allow_install(env: MutableMapping[str, str] | None = None) -> None:
    """Consent to installing the CLI for the rest of this process (a command's
    ``--yes``), unless ``SLML_INSTALL_PULUMI`` already says yes or no: an explicit
    ``no`` is kept."""
    env = os.environ if env is None else env
    if consent(env) is None:
        env[CONSENT_VAR] = "yes"


def decide(*, on_path: bool, cached: bool, consent: bool | None, interactive: bool) -> Decision:
    """What to do about the CLI. Pure: the whole policy in one place."""
    if on_path:
        return "path"
    if cached:
        return "cached"
    if consent is True:
        return "install"
    if consent is None and interactive:
        return "ask"
    return "decline"


def _ask_tty(question: str) -> bool:
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _interactive() -> bool:
    return sys.stdin.isatty() and sys.stderr.isatty()


def _install(root: Path, version: str) -> Any:
    from pulumi.automation import PulumiCommand
    from semver import VersionInfo

    return PulumiCommand.install(root=str(root), version=VersionInfo.parse(version))


def ensure_cli(
    reporter: Any,
    *,
    cache: Path | None = None,
    version: str | None = None,
    env: MutableMapping[str, str] | None = None,
    which: Callable[[str], str | None] | None = None,
    ask: Callable[[str], bool] = _ask_tty,
    interactive: Callable[[], bool] = _interactive,
    install: Callable[[Path, str], Any] = _install,
) -> bool:
    """True when a Pulumi CLI is usable now (installing it when allowed), False when
    the user declined. Raises ProviderUnavailable when the install itself fails."""
    import shutil

    from slml.bundle import cache_dir

    env = os.environ if env is None else env
    version = version or pinned_version()
    root = install_root(cache or cache_dir(), version)
    binary = root / "bin" / "pulumi"
    found = (which or shutil.which)("pulumi")
    choice = decide(on_path=bool(found), cached=binary.is_file(), consent=consent(env),
                    interactive=interactive())  # fmt: skip
    if choice == "ask":
        question = f"The Pulumi CLI is not installed. Install Pulumi {version} into {root}?"
        choice = "install" if ask(question) else "decline"
    if choice == "decline":
        return False
    if choice == "install":
        reporter.step(f"installing the Pulumi CLI {version} into {root}")
        try:
            install(root, version)
        except Exception as exc:  # network down, script failed: say so, with the way out
            raise ProviderUnavailable(
                f"installing the Pulumi CLI {version} failed: {exc}",
                hint="install it yourself (https://www.pulumi.com/docs/install/) and retry",
            ) from None
        if not binary.is_file():
            raise ProviderUnavailable(f"the Pulumi CLI install left no {binary}", hint=HINT)
    if choice != "path":
        env["PATH"] = f"{binary.parent}{os.pathsep}{env.get('PATH', '')}"
        reporter.detail(f"using the Pulumi CLI in {binary.parent}")
    return True
