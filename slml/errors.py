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


class ResolveError(PackagingError):
    """Requirements cannot be resolved: no index has them, or an index is unreachable."""


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


class DiskFull(SlmlError):
    """A write failed because the disk (or the user's quota) is full."""


#: The pip extra that provides each optional top-level package slml imports.
EXTRA_OF_PACKAGE = {
    "pulumi_aws": "aws", "boto3": "aws", "botocore": "aws", "mangum": "aws",
    "pulumi_gcp": "gcp", "google": "gcp",
    "pulumi_azure_native": "azure", "azure": "azure",
    "sklearn": "sklearn", "joblib": "sklearn",
    "onnxruntime": "onnx", "skl2onnx": "onnx", "onnx": "onnx",
}  # fmt: skip
#: Packages in several extras: the one of the provider in use is the right one.
SHARED_PACKAGES = {"pulumi": "aws, gcp or azure", "pulumi_docker_build": "aws or gcp"}


def missing_extra(exc: ImportError, *, extra: str | None = None) -> ProviderUnavailable | None:
    """A ``ProviderUnavailable`` naming the pip extra for a missing optional package, or
    None when ``exc`` is not about one (then it is an slml bug). ``extra``, when known
    (the provider in use), is preferred for packages several extras share."""
    top = (exc.name or "").split(".")[0]
    wanted = EXTRA_OF_PACKAGE.get(top) or (extra if top in SHARED_PACKAGES else None)
    if wanted is None and top in SHARED_PACKAGES:
        choices = SHARED_PACKAGES[top]
        return ProviderUnavailable(
            f"the Python package {top} is not installed here (extras: {choices})",
            hint="install the extra of the provider you deploy to, e.g. pip install 'slml[aws]'",
        )
    if wanted is None:
        return None
    return ProviderUnavailable(
        f"the Python package {top} is not installed here; it comes with slml[{wanted}]",
        hint=f"pip install 'slml[{wanted}]'",
    )


def require_extra(extra: str, *modules: str) -> None:
    """Import ``modules`` or raise ``ProviderUnavailable`` naming ``slml[extra]``: called
    before any build, so a missing SDK is reported in a second, not after a build."""
    import importlib

    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ProviderUnavailable(
                f"the Python package {module} is not installed here ({exc}); it comes "
                f"with slml[{extra}]",
                hint=f"pip install 'slml[{extra}]'",
            ) from None


def a_or_an(noun: str) -> str:
    """``noun`` with its indefinite article, for messages: "an IrisNet", "a Booster"."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"
