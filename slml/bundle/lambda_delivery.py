"""How a Lambda bundle reaches Lambda: directly, through S3, or as a container image.

Zips up to 50 MB go up directly; a larger layer or function zip goes through an S3
object; more than 250 MB unzipped (layer and function together) needs a container
image (``aws.large_bundle: image``) or fails with PackageTooLarge saying what to do.
"""

from __future__ import annotations

from typing import Literal

from slml.bundle.size import MB, human
from slml.errors import PackageTooLarge
from slml.providers.base import Bundle

DIRECT_UPLOAD_LIMIT = 50 * MB
UNZIPPED_LIMIT = 250 * MB
Delivery = Literal["direct", "s3", "image"]


def choose_delivery(
    *, layer_zip: int, function_zip: int, unzipped: int, large_bundle: str
) -> tuple[Delivery, str]:
    """How the bundle reaches Lambda, and why, in words. Raises PackageTooLarge."""
    if unzipped > UNZIPPED_LIMIT:
        why = f"{human(unzipped)} unzipped is over Lambda's 250 MB limit for zips and layers"
        if large_bundle == "image":
            return "image", f"{why}: building a container image (aws.large_bundle: image)"
        raise PackageTooLarge(
            f"the Lambda bundle is too large: {why}",
            hint="export the model to ONNX (onnxruntime is far smaller than most training "
            "frameworks), drop unneeded requirements, or set `aws.large_bundle: image` to "
            "deploy a container image (up to 10 GB)",
        )
    biggest = max(layer_zip, function_zip)
    if biggest > DIRECT_UPLOAD_LIMIT:
        return "s3", (
            f"a zip is {human(biggest)}, over the 50 MB direct-upload limit: uploading "
            "through an S3 object (aws.artifact_bucket, or a bucket the stack creates)"
        )
    return "direct", "zips are under 50 MB: uploaded directly with the function"


def delivery(bundle: Bundle) -> Delivery:
    """The delivery a built bundle chose (read back from its files)."""
    if "image" in bundle.files:
        return "image"
    parts = bundle.size.parts
    big = max(parts.get("layer_zipped", 0), parts.get("function_zipped", 0))
    return "s3" if big > DIRECT_UPLOAD_LIMIT else "direct"
