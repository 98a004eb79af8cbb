"""Capture sinks, chosen by URL. Cloud SDKs are imported when a sink is opened, never
at import.

- a path or ``file://DIR``: JSON lines appended to ``DIR/capture-<pid>.jsonl``; past
  ``max_file_bytes`` the file is renamed ``capture-<pid>-<UTC time>.jsonl`` and a new
  one started (rotation; nothing is deleted).
- ``s3://BUCKET/PREFIX`` (boto3), ``gs://BUCKET/PREFIX`` (google-cloud-storage),
  ``az://CONTAINER/PREFIX`` (azure-storage-blob; the account from
  ``AZURE_STORAGE_CONNECTION_STRING``, else ``AzureWebJobsStorage``): one object per
  batch, ``PREFIX/v<version>/<UTC time>-<pid>-<instance>-<n>.jsonl`` (``instance`` random
  per process, new after a SnapStart restore). The time in the name is when
  the batch was written, later than every record in it (``slml capture pull --since``
  skips older objects by name).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SCHEMES = ("s3", "gs", "az")
STAMP = "%Y%m%dT%H%M%S"


def stamp(at: float | None = None) -> str:
    """UTC time as it appears in file and object names: ``20261201T223000.123456Z``."""
    moment = datetime.fromtimestamp(time.time() if at is None else at, UTC)
    return moment.strftime(STAMP) + f".{moment.microsecond:06d}Z"


def split_url(url: str) -> tuple[str, str, str]:
    """``s3://b/p/q`` → ("s3", "b", "p/q"); a path or file:// URL → ("file", "", path)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme == "file":
        return "file", "", rest if sep else url
    if scheme not in SCHEMES:
        raise ValueError(f"capture sink {url!r}: use a path, file://, s3://, gs:// or az://")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValueError(f"capture sink {url!r} names no bucket or container")
    return scheme, bucket, prefix.strip("/")


class FileSink:
    """JSON lines into a directory, rotated by size."""

    def __init__(self, directory: str | Path, *, max_file_bytes: int = 64 * 2**20) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_file_bytes = max_file_bytes
        self.path = self.dir / f"capture-{os.getpid()}.jsonl"

    def renew(self) -> None:
        """A new file for this process (after a snapshot restore: see ObjectSink)."""
        self.path = self.dir / f"capture-{os.getpid()}-{secrets.token_hex(4)}.jsonl"

    def write(self, lines: list[bytes]) -> None:
        with open(self.path, "ab") as fh:
            fh.write(b"".join(lines))
            size = fh.tell()
        if size >= self.max_file_bytes:
            self.path.rename(self.dir / f"capture-{os.getpid()}-{stamp()}.jsonl")


class ObjectSink:
    """One object per batch under a prefix; ``put(key, data)`` does the upload."""

    def __init__(self, put: Callable[[str, bytes], None], *, prefix: str, version: str) -> None:
        self.put, self.prefix, self.version = put, prefix, version
        self.count = 0
        self.instance = secrets.token_hex(4)

    def renew(self) -> None:
        """New object names for a new instance. Lambda environments restored from one
        SnapStart snapshot share the pid, counter and clock origin of the snapshot; the
        random instance part keeps their objects from overwriting each other's."""
        self.instance, self.count = secrets.token_hex(4), 0

    def key(self) -> str:
        self.count += 1
        name = f"v{self.version}/{stamp()}-{os.getpid()}-{self.instance}-{self.count}.jsonl"
        return f"{self.prefix}/{name}" if self.prefix else name

    def write(self, lines: list[bytes]) -> None:
        self.put(self.key(), b"".join(lines))


def s3_put(bucket: str, client: Any = None) -> Callable[[str, bytes], None]:
    if client is None:
        import boto3

        client = boto3.client("s3")

    def put(key: str, data: bytes) -> None:
        client.put_object(Bucket=bucket, Key=key, Body=data, ContentType="application/x-ndjson")

    return put


def gcs_put(bucket: str, client: Any = None) -> Callable[[str, bytes], None]:
    if client is None:
        from google.cloud import storage

        client = storage.Client()
    handle = client.bucket(bucket)

    def put(key: str, data: bytes) -> None:
        handle.blob(key).upload_from_string(data, content_type="application/x-ndjson")

    return put


def azure_put(container: str, client: Any = None) -> Callable[[str, bytes], None]:
    if client is None:
        from azure.storage.blob import BlobServiceClient

        env = os.environ
        conn = env.get("AZURE_STORAGE_CONNECTION_STRING") or env.get("AzureWebJobsStorage")
        if not conn:
            raise ValueError(
                "capture sink az://: set AZURE_STORAGE_CONNECTION_STRING (or AzureWebJobsStorage)"
            )
        client = BlobServiceClient.from_connection_string(conn)
    handle = client.get_container_client(container)

    def put(key: str, data: bytes) -> None:
        handle.upload_blob(key, data, overwrite=True)

    return put


_PUTS = {"s3": s3_put, "gs": gcs_put, "az": azure_put}


def open_sink(
    url: str, *, version: str, max_file_bytes: int = 64 * 2**20, client: Any = None
) -> Any:
    """The sink for ``url`` (``client``: an SDK client to use instead of a default one)."""
    scheme, bucket, prefix = split_url(url)
    if scheme == "file":
        return FileSink(prefix, max_file_bytes=max_file_bytes)
    return ObjectSink(_PUTS[scheme](bucket, client), prefix=prefix, version=version)
