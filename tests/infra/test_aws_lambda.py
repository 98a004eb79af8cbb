"""The LambdaModel component under Pulumi's mocks (not preview: the mocks compute the
ARNs a deploy would, so the Permission's scope can be checked)."""

from __future__ import annotations

import json
from pathlib import Path

import pulumi
import pytest

from slml.engine import offline_plan
from slml.infra.aws_lambda import TYPE, LambdaModel, LambdaModelArgs

ACCOUNT = "123456789012"


class Recorder(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: dict[str, tuple[str, dict]] = {}

    def new_resource(self, args):
        outputs = dict(args.inputs)
        rid = f"{args.name}-id"
        if args.typ == "aws:apigatewayv2/api:Api":
            outputs["executionArn"] = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:{rid}"
            outputs["apiEndpoint"] = f"https://{rid}.execute-api.us-east-1.amazonaws.com"
        if args.typ == "aws:lambda/function:Function":
            arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{args.inputs['name']}"
            outputs.update(arn=arn, version="1", invokeArn=f"invoke:{arn}")
        if args.typ == "aws:lambda/alias:Alias":
            arn = (f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:"
                   f"{args.inputs['functionName']}:{args.inputs['name']}")  # fmt: skip
            outputs.update(arn=arn, invokeArn=f"invoke:{arn}")
        if args.typ == "aws:iam/role:Role":
            outputs["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{args.inputs['name']}"
        if args.typ == "aws:lambda/layerVersion:LayerVersion":
            outputs["arn"] = (
                f"arn:aws:lambda:us-east-1:{ACCOUNT}:layer:{args.inputs['layerName']}:1"
            )
        if args.typ == "aws:s3/bucket:Bucket":
            outputs["bucket"] = "generated-bucket"
        if args.typ == "aws:cloudwatch/logGroup:LogGroup":  # the API drops any ":*" suffix
            outputs["arn"] = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{args.inputs['name']}"
        self.resources[args.name] = (args.typ, outputs)
        return rid, outputs

    def call(self, args):
        return {}, []


@pytest.fixture
def zips(tmp_path: Path) -> tuple[str, str]:
    (tmp_path / "f.zip").write_bytes(b"PK")
    (tmp_path / "l.zip").write_bytes(b"PK")
    return str(tmp_path / "f.zip"), str(tmp_path / "l.zip")


def deploy(args: LambdaModelArgs) -> dict[str, tuple[str, dict]]:
    """Run the component under non-preview mocks and return every resource's state."""
    mocks = Recorder()
    pulumi.runtime.set_mocks(mocks, project="iris", stack="iris-dev", preview=False)

    @pulumi.runtime.test
    def run():
        model = LambdaModel("iris", args)
        return model.url

    run()
    return mocks.resources


def args_for(zips, **overrides) -> LambdaModelArgs:
    return LambdaModelArgs(
        project="iris", stage="dev", function_zip=zips[0], layer_zip=zips[1], **overrides
    )


def test_function_properties(zips):
    res = deploy(
        args_for(zips, architecture="arm64", memory=2048, timeout=20, runtime="python3.13")
    )
    typ, fn = res["iris-function"]
    assert typ == "aws:lambda/function:Function"
    assert fn["handler"] == "slml_handler.handler" and fn["runtime"] == "python3.13"
    assert fn["architectures"] == ["arm64"] and fn["memorySize"] == 2048 and fn["timeout"] == 20
    assert fn["publish"] is True and fn["name"] == "iris-dev"
    assert fn["role"] == f"arn:aws:iam::{ACCOUNT}:role/iris-dev-lambda"
    assert fn["layers"] == [f"arn:aws:lambda:us-east-1:{ACCOUNT}:layer:iris-dev-deps:1"]
    assert fn["environment"]["variables"]["SLML_MODEL_DIR"] == "/var/task/model"
    assert "SLML_API_KEY" not in fn["environment"]["variables"]
    _, layer = res["iris-deps"]
    assert layer["compatibleArchitectures"] == ["arm64"] and layer["compatibleRuntimes"] == [
        "python3.13"
    ]


LOG_GROUP_ARN = f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/iris-dev"


@pytest.mark.parametrize("delivery", ["direct", "s3"])
def test_role_may_only_write_its_own_log_group(zips, delivery):
    """Issue 11 D14: no managed policy with ``logs:*`` on ``*``, no s3:GetObject."""
    res = deploy(args_for(zips, delivery=delivery))
    policy = json.loads(res["iris-role"][1]["assumeRolePolicy"])
    assert policy["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert not [
        v for t, v in res.values() if t == "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
    ]
    grants = [v for t, v in res.values() if t == "aws:iam/rolePolicy:RolePolicy"]
    assert [g["role"] for g in grants] == ["iris-role-id"]
    (statement,) = json.loads(grants[0]["policy"])["Statement"]
    assert statement["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert statement["Resource"] == [f"{LOG_GROUP_ARN}:log-stream:*"]
    assert "*" not in statement["Resource"][0].removesuffix(":log-stream:*")


def test_http_api_integration_route_stage_and_permission(zips):
    res = deploy(args_for(zips))
    assert res["iris-api"][1]["protocolType"] == "HTTP"
    _, integration = res["iris-integration"]
    assert integration["integrationType"] == "AWS_PROXY"
    assert integration["payloadFormatVersion"] == "2.0"
    assert integration["integrationUri"].startswith("invoke:arn:aws:lambda")
    _, route = res["iris-route"]
    assert route["routeKey"] == "$default" and route["authorizationType"] == "AWS_IAM"
    assert route["target"] == "integrations/iris-integration-id"
    _, stage = res["iris-stage"]
    assert stage["name"] == "$default" and stage["autoDeploy"] is True
    _, perm = res["iris-invoke"]
    assert perm["principal"] == "apigateway.amazonaws.com"
    assert perm["action"] == "lambda:InvokeFunction" and perm["function"] == "iris-dev"
    assert perm["sourceArn"] == f"arn:aws:execute-api:us-east-1:{ACCOUNT}:iris-api-id/*/*"


def test_log_group_retention(zips):
    _, logs = deploy(args_for(zips, log_retention_days=30))["iris-logs"]
    assert logs["name"] == "/aws/lambda/iris-dev" and logs["retentionInDays"] == 30


@pytest.mark.parametrize("auth", ["iam", "api_key", "none"])
def test_no_unauthenticated_route_unless_auth_none(zips, auth):
    res = deploy(args_for(zips, auth=auth, api_key="k" if auth == "api_key" else None))
    routes = [v for t, v in res.values() if t == "aws:apigatewayv2/route:Route"]
    assert routes and all((r["authorizationType"] == "NONE") == (auth == "none") for r in routes)
    assert (auth == "iam") == all(r["authorizationType"] == "AWS_IAM" for r in routes)


def test_api_key_is_checked_by_an_authorizer_before_the_function(zips):
    """Issue 11 D15: a call without the key never reaches (or bills) the model."""
    res = deploy(args_for(zips, auth="api_key", api_key="k"))
    _, route = res["iris-route"]
    _, authorizer = res["iris-authorizer"]
    assert route["authorizationType"] == "CUSTOM" and route["authorizerId"] == "iris-authorizer-id"
    assert authorizer["authorizerType"] == "REQUEST"
    assert authorizer["identitySources"] == ["$request.header.x-api-key"]
    assert authorizer["authorizerPayloadFormatVersion"] == "2.0"
    assert authorizer["enableSimpleResponses"] is True
    assert authorizer["authorizerResultTtlInSeconds"] == 300  # cached per key value
    _, fn = res["iris-authorizer-function"]
    assert authorizer["authorizerUri"] == f"invoke:{fn['arn']}"
    assert fn["handler"] == "slml_authorizer.handler" and fn["memorySize"] == 128
    assert fn["environment"]["variables"] == {"SLML_API_KEY": "k"}
    assert fn["role"].endswith(":role/iris-dev-auth-lambda")  # its own role, its own logs
    (statement,) = json.loads(res["iris-authorizer-log-write"][1]["policy"])["Statement"]
    assert statement["Resource"] == [
        f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/aws/lambda/iris-dev-auth:log-stream:*"
    ]
    _, perm = res["iris-authorizer-invoke"]
    assert perm["function"] == "iris-dev-auth" and perm["principal"] == "apigateway.amazonaws.com"
    assert perm["sourceArn"] == (
        f"arn:aws:execute-api:us-east-1:{ACCOUNT}:iris-api-id/authorizers/iris-authorizer-id"
    )
    assert "iris-authorizer" not in deploy(args_for(zips, auth="iam"))


def test_stage_throttling(zips):
    """Issue 11 D15: the gateway answers 429 over these, before any function runs."""
    _, stage = deploy(args_for(zips, throttle_burst=20, throttle_rate=5.5))["iris-stage"]
    assert stage["defaultRouteSettings"] == {"throttlingBurstLimit": 20, "throttlingRateLimit": 5.5}


def test_concurrency_alias_and_tags(zips):
    res = deploy(
        args_for(zips, reserved_concurrency=5, provisioned_concurrency=2, tags={"team": "ml"})
    )
    fn = res["iris-function"][1]
    assert fn["reservedConcurrentExecutions"] == 5
    assert fn["tags"] == {"slml:project": "iris", "slml:stage": "dev", "team": "ml"}
    assert res["iris-live"][1]["functionVersion"] == "1"
    assert res["iris-provisioned"][1]["provisionedConcurrentExecutions"] == 2
    assert res["iris-invoke"][1]["qualifier"] == "live"


def test_s3_delivery_uploads_objects_and_grants_read_on_them(zips):
    res = deploy(args_for(zips, delivery="s3"))
    assert res["iris-function"][1]["s3Bucket"] == "generated-bucket"
    assert res["iris-function"][1]["s3Key"] == "iris/dev/function.zip"
    assert "code" not in res["iris-function"][1]
    assert "iris-artifact-read" not in res  # Lambda reads the zips as the deployer


def test_children_are_parented_to_the_component(zips):
    plan = offline_plan(lambda: LambdaModel("iris", args_for(zips)), project="iris", stack="dev")
    assert plan[0].type == TYPE
    assert all(r.parent == "iris" for r in plan[1:])


# -- traffic: the API calls the live alias; a canary is the alias's additional version --
def test_api_and_permission_target_the_live_alias(zips):
    res = deploy(args_for(zips))
    _, alias = res["iris-live"]
    assert alias["name"] == "live" and alias["functionVersion"] == "1"
    assert "routingConfig" not in alias or not alias["routingConfig"]
    _, integration = res["iris-integration"]
    assert integration["integrationUri"].endswith(":function:iris-dev:live")
    assert res["iris-invoke"][1]["qualifier"] == "live"


def test_canary_keeps_the_alias_on_the_old_version_with_the_new_one_weighted(zips):
    res = deploy(args_for(zips, alias_version="3", canary_version="$new", canary_weight=0.1))
    _, alias = res["iris-live"]
    assert alias["functionVersion"] == "3"  # the OLD version stays the alias's own
    assert alias["routingConfig"]["additionalVersionWeights"] == {"1": 0.1}  # the new one


def test_promotion_moves_the_alias_with_no_additional_weight(zips):
    res = deploy(args_for(zips, alias_version="4"))
    _, alias = res["iris-live"]
    assert alias["functionVersion"] == "4"
    assert not alias.get("routingConfig")


@pytest.mark.parametrize("weight", [0.0, 1.0, 1.5])
def test_a_canary_weight_outside_zero_one_is_refused(zips, weight):
    with pytest.raises(ValueError, match="between 0 and 1"):
        deploy(args_for(zips, alias_version="3", canary_version="$new", canary_weight=weight))


def test_a_shift_of_an_image_function_serves_the_recorded_image(zips):
    pinned = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/iris@sha256:abc"
    res = deploy(args_for(zips, delivery="image", pinned_image=pinned, alias_version="2"))
    types = [t for t, _ in res.values()]
    assert "aws:ecr/repository:Repository" in types  # the repository stays
    assert not any(t.startswith("docker-build") for t in types)  # nothing is built
    assert res["iris-function"][1]["imageUri"] == pinned


def test_snap_start_on_published_versions_behind_the_live_alias(zips):
    res = deploy(args_for(zips, snap_start=True))
    fn = res["iris-function"][1]
    assert fn["snapStart"] == {"applyOn": "PublishedVersions"} and fn["publish"] is True
    assert res["iris-live"][1]["functionVersion"] == "1"
    assert "iris-provisioned" not in res
    assert res["iris-invoke"][1]["qualifier"] == "live"
    assert "snapStart" not in deploy(args_for(zips))["iris-function"][1]
    older = deploy(args_for(zips, snap_start=True, runtime="python3.11"))["iris-function"][1]
    assert "snapStart" not in older  # SnapStart for Python starts at 3.12


@pytest.mark.parametrize(
    "extra",
    [{"runtime": "python3.11"}, {"provisioned_concurrency": 1}, {"ephemeral_storage": 1024}],
)
def test_snap_start_config_refuses_what_aws_excludes(extra):
    from pydantic import ValidationError

    from slml.config.sections import AwsConfig

    assert AwsConfig(snap_start=True).snap_start
    with pytest.raises(ValidationError, match="snap_start needs"):
        AwsConfig(snap_start=True, **extra)
