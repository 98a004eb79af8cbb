"""Object sinks write one object per batch under the prefix: S3 under moto, GCS and
Azure Blob through their SDKs with a recording HTTP transport (no network)."""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import requests
from moto import mock_aws
from requests.adapters import BaseAdapter
from urllib3.response import HTTPResponse

from slml.runtime.capture import Capture
from slml.runtime.capture_sinks import open_sink

LINES = [b'{"request_id":"a"}\n', b'{"request_id":"b"}\n']


class Recorder(BaseAdapter):
    """A requests adapter that records every request and answers like the service."""

    def __init__(self, answer: Any) -> None:
        super().__init__()
        self.requests: list[requests.PreparedRequest] = []
        self.answer = answer

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.requests.append(request)
        response = requests.Response()
        response.status_code, headers, body = self.answer(request)
        response.headers.update(headers)
        response._content = body
        response.raw = HTTPResponse(body=io.BytesIO(body), headers=headers,
                                    status=response.status_code, preload_content=False)  # fmt: skip
        response.url, response.request = request.url or "", request
        return response

    def close(self) -> None:
        pass


class Session(requests.Session):
    is_mtls = False  # google-cloud-core asks its session this


def session(adapter: Recorder) -> requests.Session:
    s = Session()
    s.mount("https://", adapter)
    return s


def body_of(request: requests.PreparedRequest) -> bytes:
    body = request.body
    if hasattr(body, "read"):
        body = body.read()
    return body.encode() if isinstance(body, str) else bytes(body or b"")


@mock_aws
def test_s3_sink_writes_one_object_per_batch_under_the_prefix():
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket="cap")
    sink = open_sink("s3://cap/iris/prod", version="3", client=client)
    cap = Capture(sink, model="iris", version="3", batch=2, flush_seconds=5)
    for rid in "abcd":
        cap.offer(rid, 0.0, b"{}", False, {"predictions": [1]})
    cap.close()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="cap")["Contents"]]
    assert len(keys) == 2 and all(k.startswith("iris/prod/v3/") for k in keys)
    records = [
        json.loads(line)
        for k in keys
        for line in client.get_object(Bucket="cap", Key=k)["Body"].read().splitlines()
    ]
    assert sorted(r["request_id"] for r in records) == list("abcd")


def test_gcs_sink_uploads_through_the_sdk():
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    def answer(req: requests.PreparedRequest) -> tuple[int, dict, bytes]:
        meta = {"bucket": "cap", "name": "x", "generation": "1"}
        return 200, {"content-type": "application/json"}, json.dumps(meta).encode()

    rec = Recorder(answer)
    client = storage.Client(project="p", credentials=AnonymousCredentials(), _http=session(rec))
    open_sink("gs://cap/iris", version="2", client=client).write(LINES)
    (upload,) = [r for r in rec.requests if r.method == "POST"]  # (the SDK GETs the bucket)
    assert "/upload/storage/v1/b/cap/o" in (upload.url or "")
    data = body_of(upload)
    assert b'"name": "iris/v2/' in data or b'"name":"iris/v2/' in data
    assert b"".join(LINES) in data


def test_azure_sink_uploads_through_the_sdk():
    from azure.core.pipeline.transport import RequestsTransport
    from azure.storage.blob import BlobServiceClient

    def answer(req: requests.PreparedRequest) -> tuple[int, dict, bytes]:
        headers = {"ETag": '"0x1"', "Last-Modified": "Tue, 01 Dec 2026 22:00:00 GMT",
                   "x-ms-request-server-encrypted": "true", "Content-Length": "0"}  # fmt: skip
        return 201, headers, b""

    rec = Recorder(answer)
    transport = RequestsTransport(session=session(rec), session_owner=False)
    client = BlobServiceClient(
        "https://acct.blob.core.windows.net", credential=None, transport=transport
    )
    open_sink("az://cap/iris/prod", version="5", client=client).write(LINES)
    (put,) = rec.requests
    assert put.method == "PUT"
    assert (put.url or "").startswith("https://acct.blob.core.windows.net/cap/iris/prod/v5/")
    assert body_of(put) == b"".join(LINES)

