"""The slml error family. One place (``exit_code``) maps them to process exit codes.

Every error carries a human message (what happened, where) and an optional ``hint``
(what to do). The CLI prints both and exits 2; a traceback only with ``--debug``.
"""

from __future__ import annotations


class SlmlError(Exception):
    """Root of every error slml raises on purpose."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ConfigError(SlmlError):
    """slml.yaml or a command-line option is wrong; the message names the key path."""


class UsageError(SlmlError):
    """A command was called with arguments that do not fit together."""


class ArtifactError(SlmlError):
    """A model artifact cannot be saved or loaded."""


class IntegrityError(ArtifactError):
    """An artifact's files do not match the sha256 recorded in its manifest."""


class UnsupportedModel(ArtifactError):
    """No flavor knows how to save this object."""


class PackagingError(SlmlError):
    """Building a bundle failed (resolve, install, copy, zip)."""


class PackageTooLarge(PackagingError):
    """The bundle is over a limit of its target."""


class IncompatibleWheel(PackagingError):
    """A dependency ships a binary that does not run on the target platform."""


class DeployError(SlmlError):
    """Deploying, updating or destroying a deployment failed."""


class NotDeployed(DeployError):
    """There is no recorded deployment for this project, stage and provider."""


class ProviderUnavailable(SlmlError):
    """A provider, its SDK or its tooling (Pulumi CLI, Docker) is not installed here."""


class InvokeError(SlmlError):
    """Calling a deployed endpoint failed."""


def exit_code(error: BaseException) -> int:
    """The process exit code for an error: 2 for every SlmlError, 130 for Ctrl-C, else 1."""
    if isinstance(error, SlmlError):
        return error.exit_code
    if isinstance(error, KeyboardInterrupt):
        return 130
    return 1
