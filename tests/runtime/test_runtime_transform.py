"""SageMaker Batch Transform's mini-batches on /invocations: one answer line per row."""

from __future__ import annotations

import json

from test_runtime_app import IRIS_ROWS, NAMES, post

LINES = {"accept": "application/jsonlines"}


def _answers(response) -> list[dict]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/jsonlines")
    return [json.loads(line) for line in response.text.splitlines()]


def test_csv_rows_answer_one_line_each_with_bad_rows_in_their_place(iris_client):
    expected = post(iris_client, {"instances": IRIS_ROWS}).json()["predictions"]
    rows = [",".join(map(str, r)) for r in IRIS_ROWS]
    body = "\n".join([",".join(NAMES), rows[0], "5.1,3.5,abc,0.2", rows[1], "1,2", rows[2]])
    answers = _answers(post(iris_client, body.encode(), "/invocations",
                            headers={**LINES, "content-type": "text/csv"}))
    assert len(answers) == 5  # the header is not a row
    assert [a.get("prediction") for a in answers[::2]] == expected
    assert answers[1]["error"]["code"] == "invalid_input"
    assert answers[3]["error"]["code"] == "unreadable_row"
    assert "expected 4" in answers[3]["error"]["message"]


def test_json_lines_rows_by_list_or_by_name(iris_client):
    expected = post(iris_client, {"instances": IRIS_ROWS}).json()["predictions"]
    lines = [json.dumps(IRIS_ROWS[0]), json.dumps(dict(zip(NAMES, IRIS_ROWS[1], strict=True))),
             "{not json", json.dumps(IRIS_ROWS[2])]
    answers = _answers(post(iris_client, "\n".join(lines).encode(), "/invocations",
                            headers={**LINES, "content-type": "application/jsonlines"}))
    assert [answers[i]["prediction"] for i in (0, 1, 3)] == expected
    assert answers[2]["error"]["code"] == "unreadable_row"


def test_transform_keeps_the_415_and_the_key(iris_artifact):
    from runtime_support import make_client

    client = make_client(iris_artifact, api_key="k")
    r = post(client, b"1,2,3,4", "/invocations", headers={**LINES, "content-type": "text/csv"})
    assert r.status_code == 401
    r = post(client, b"1,2,3,4", "/invocations",
             headers={**LINES, "content-type": "text/plain", "x-api-key": "k"})
    assert (r.status_code, r.json()["error"]["code"]) == (415, "unsupported_media_type")
