"""Reading captured records back from a sink URL: list the files or objects, read each.

Every store yields ``(name, read)`` pairs, ``name`` being the file or object name
(object names carry the UTC time their batch was written, slml/runtime/capture_sinks.py)
and ``read()`` its bytes. SDK clients are created lazily, or handed in (tests).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from slml.errors import ProviderUnavailable
from slml.runtime.capture_sinks import split_url

Entry = tuple[str, Callable[[], bytes]]


def entries(url: str, *, client: Any = None) -> Iterator[Entry]:
    """Every capture file or object under ``url``, in name order."""
    scheme, bucket, prefix = split_url(url)
    if scheme == "file":
        yield from _files(Path(prefix))
    elif scheme == "s3":
        yield from _s3(bucket, prefix, client or _sdk("boto3", "aws", lambda m: m.client("s3")))
    elif scheme == "gs":
        yield from _gcs(bucket, prefix, client or _sdk("google.cloud.storage", "gcp",
                                                       lambda m: m.Client()))  # fmt: skip
    else:
        yield from _azure(bucket, prefix, client or _azure_client())


def _files(directory: Path) -> Iterator[Entry]:
    if not directory.is_dir():
        return
    for path in sorted(directory.glob("*.jsonl")):
        yield path.name, path.read_bytes


def _s3(bucket: str, prefix: str, client: Any) -> Iterator[Entry]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for page in pages:
        for obj in page.get("Contents", []):
            key = obj["Key"]
            yield key, lambda key=key: client.get_object(Bucket=bucket, Key=key)["Body"].read()


def _gcs(bucket: str, prefix: str, client: Any) -> Iterator[Entry]:
    for blob in client.list_blobs(bucket, prefix=prefix or None):
        yield blob.name, blob.download_as_bytes


def _azure(container: str, prefix: str, client: Any) -> Iterator[Entry]:
    handle = client.get_container_client(container)
    for blob in handle.list_blobs(name_starts_with=prefix or None):
        name = blob.name
        yield name, lambda name=name: handle.download_blob(name).readall()


def _sdk(module: str, extra: str, make: Callable[[Any], Any]) -> Any:
    import importlib

    try:
        return make(importlib.import_module(module))
    except ImportError:
        raise ProviderUnavailable(
            f"reading captured records from this sink needs {module}",
            hint=f"pip install 'slml[{extra}]'",
        ) from None


def _azure_client() -> Any:
    import os

    conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if not conn:
        raise ProviderUnavailable(
            "reading captured records from az:// needs the storage account's connection string",
            hint="set AZURE_STORAGE_CONNECTION_STRING (az storage account show-connection-string)",
        )
    return _sdk("azure.storage.blob", "azure",
                lambda m: m.BlobServiceClient.from_connection_string(conn))  # fmt: skip
