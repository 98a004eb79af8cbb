"""The Lambda role may write captured traffic under its sink's prefix, and nowhere
else; without an S3 sink it gets no S3 grant at all (under Pulumi's mocks)."""

from __future__ import annotations

import json

from tests.infra.test_aws_lambda import args_for, deploy, zips  # noqa: F401


def grants(res: dict) -> dict[str, dict]:
    return {name: v for name, (t, v) in res.items() if t == "aws:iam/rolePolicy:RolePolicy"}


def test_an_s3_sink_gets_put_object_under_its_prefix_only(zips):  # noqa: F811
    env = {"SLML_CAPTURE": json.dumps({"sample": 0.1, "sink": "s3://cap-bucket/iris/prod"})}
    res = deploy(args_for(zips, env=env))
    grant = grants(res)["iris-capture-write"]
    assert grant["role"] == "iris-role-id"
    (statement,) = json.loads(grant["policy"])["Statement"]
    assert statement == {"Effect": "Allow", "Action": ["s3:PutObject"],
                         "Resource": ["arn:aws:s3:::cap-bucket/iris/prod/*"]}  # fmt: skip
    fn = res["iris-function"][1]
    assert json.loads(fn["environment"]["variables"]["SLML_CAPTURE"])["sample"] == 0.1


def test_no_capture_no_grant(zips):  # noqa: F811
    assert "iris-capture-write" not in grants(deploy(args_for(zips)))
