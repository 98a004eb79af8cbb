"""How a Lambda bundle reaches Lambda: directly, through S3, or as a container image.

Zips up to 50 MB go up directly; a larger layer or function zip goes through an S3
object; more than 250 MB unzipped (layer and function together) needs a container
image (``aws.large_bundle: image``) or fails with PackageTooLarge saying what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slml.bundle.size import MB, human
from slml.bundle.size_advice import too_large_hint
from slml.errors import PackageTooLarge, PackagingError
from slml.pipeline import Bundle, LambdaBuildOutputs, LambdaDelivery

DIRECT_UPLOAD_LIMIT = 50 * MB
UNZIPPED_LIMIT = 250 * MB
Delivery = LambdaDelivery


def choose_delivery(
    *, layer_zip: int, function_zip: int, unzipped: int, large_bundle: str,
    largest: Sequence[tuple[str, int]] = (), manifest: dict[str, Any] | None = None,
) -> tuple[Delivery, str]:
    """How the bundle reaches Lambda, and why, in words. Raises PackageTooLarge naming
    the largest packages and the fixes that apply to the model's flavor."""
    if unzipped > UNZIPPED_LIMIT:
        why = f"{human(unzipped)} unzipped is over Lambda's 250 MB limit for zips and layers"
        if large_bundle == "image":
            return "image", f"{why}: building a container image (aws.large_bundle: image)"
        manifest = manifest or {}
        packages, hint = too_large_hint(
            largest, flavor=manifest.get("flavor"), requirements=manifest.get("requirements", [])
        )
        raise PackageTooLarge(
            f"the Lambda bundle is too large: {why}" + (f" ({packages})" if packages else ""),
            hint=hint,
        )
    biggest = max(layer_zip, function_zip)
    if biggest > DIRECT_UPLOAD_LIMIT:
        return "s3", (
            f"a zip is {human(biggest)}, over the 50 MB direct-upload limit: uploading "
            "through an S3 object (aws.artifact_bucket, or a bucket the stack creates)"
        )
    return "direct", "zips are under 50 MB: uploaded directly with the function"


def unavoidable_image(
    *, unzipped: int, largest: Sequence[tuple[str, int]], export_notes: Sequence[str] = (),
    flavor: str | None = None,
) -> str | None:
    """Why no zip can ever hold this bundle, so the image path is taken whatever
    ``aws.large_bundle`` says: one package alone over the 250 MB limit (CatBoost's own
    library is 264 MB), a deep model that could not be exported to ONNX, or an MLflow
    pyfunc model (``flavor`` "mlflow": it runs inside mlflow, whose own dependency set
    is the bundle). None when the bundle fits or a fix exists (CPU-only wheels,
    dropping a requirement)."""
    if unzipped <= UNZIPPED_LIMIT:
        return None
    failed = [n for n in export_notes if n.startswith("no ONNX export")]
    if failed:
        return failed[0]
    if flavor == "mlflow":
        return (f"an MLflow pyfunc model is served by mlflow itself, and mlflow with its "
                f"dependencies unpacks to {human(unzipped)}, over Lambda's 250 MB "
                "limit")  # fmt: skip
    fixable = [name for name, _ in largest if name.lower().startswith("nvidia")]
    if fixable:  # GPU wheels: the CPU-only distribution is the fix (size_advice.py)
        return None
    over = [(name, size) for name, size in largest if size > UNZIPPED_LIMIT]
    if over:
        name, size = over[0]
        return f"{name} alone is {human(size)} unzipped, over Lambda's 250 MB limit"
    return None


def lambda_outputs(bundle: Bundle) -> LambdaBuildOutputs:
    """The Lambda build's typed outputs: the builder's own (``bundle.outputs``), or, for
    a bundle assembled by hand from named files (tests, a custom build callback in the
    standalone infra project), the same fields read from ``files`` and ``size.parts``.
    Raises PackagingError when the function zip is not among the files."""
    if isinstance(bundle.outputs, LambdaBuildOutputs):
        return bundle.outputs
    files = bundle.files
    if "zip" not in files:
        raise PackagingError(
            f"the {bundle.provider} bundle at {bundle.path} has no function zip",
            hint="build it with `slml build --provider aws`",
        )
    image = files.get("image")
    parts = bundle.size.parts
    big = max(parts.get("layer_zipped", 0), parts.get("function_zipped", 0))
    mode: Delivery = "image" if image else "s3" if big > DIRECT_UPLOAD_LIMIT else "direct"
    return LambdaBuildOutputs(
        function_zip=files["zip"], layer_zip=files.get("layer"),
        function_dir=files.get("function", bundle.path / "function"),
        layer_dir=files.get("layer_dir", bundle.path / "python"), delivery=mode,
        reason="read back from a bundle built by hand", image_context=image,
    )  # fmt: skip


def delivery(bundle: Bundle) -> Delivery:
    """The delivery a built bundle chose."""
    return lambda_outputs(bundle).delivery
