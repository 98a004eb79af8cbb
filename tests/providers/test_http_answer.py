"""One way to send a prediction and map its errors, over a real httpx client."""

from __future__ import annotations

import httpx
import pytest

from slml.errors import InvokeError
from slml.providers import http_answer

URL = "https://model.example/predict"


def answer(status: int, **body) -> httpx.Response:
    return httpx.Response(status, **body, request=httpx.Request("POST", URL))


def test_a_json_object_is_returned():
    assert http_answer.answer_json(answer(200, json={"predictions": [1]}), what=URL) == {
        "predictions": [1]
    }


@pytest.mark.parametrize(
    ("response", "words"),
    [
        (answer(422, json={"error": {"code": "invalid_input", "message": "4 columns"}}),
         f"{URL} answered 422 invalid_input: 4 columns"),
        (answer(500, json={"message": "Internal"}), f"{URL} answered 500: Internal"),
        (answer(502, text="bad gateway"), f"{URL} answered 502: bad gateway"),
        (answer(503, text=""), f"{URL} answered 503: Service Unavailable"),
        (answer(200, text="<html>"), f"{URL} answered 200 with non-JSON: <html>"),
        (answer(200, json=[1, 2]), f"{URL} answered 200 with non-JSON: [1,2]"),
    ],
)  # fmt: skip
def test_errors_carry_the_servers_words(response, words):
    with pytest.raises(InvokeError) as info:
        http_answer.answer_json(response, what=URL, refused_hint="sign in")
    assert info.value.message == words and info.value.hint is None


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_call_gets_the_targets_hint(status):
    with pytest.raises(InvokeError) as info:
        http_answer.answer_json(answer(status, json={"message": "no"}), what=URL, refused_hint="x")
    assert info.value.hint == "x"


def test_a_long_answer_is_cut():
    assert len(http_answer.error_message(answer(500, text="x" * 10_000))) == 500


def test_an_unreachable_server_is_an_invoke_error():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = httpx.Client(transport=httpx.MockTransport(refuse))
    with client, pytest.raises(InvokeError, match=f"cannot reach {URL}: connection refused"):
        http_answer.post(client, URL, json={})
