"""Each Pulumi target's stack outputs, typed: what its program ``pulumi.export``s and
the ledger records under ``outputs``. Read one with ``GcpOutputs.of(record)``; nothing
reads stack outputs by string key. A field is optional where stacks deployed by an
older slml may lack it; readers fall back to slml.yaml there.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from slml.ledger import StackOutputs


class AwsOutputs(StackOutputs):
    """``--provider aws``: the Lambda function behind API Gateway."""

    function_name: str | None = None
    api_id: str | None = None
    log_group: str | None = None
    auth: str | None = None  # api_key | iam | none
    version: str | None = None  # the published Lambda version the alias points to
    alias: str | None = None
    image_uri: str | None = None  # an image-packaged function


class GcpOutputs(StackOutputs):
    """``--provider gcp``: the Cloud Run service."""

    service_name: str | None = None
    project: str | None = None
    image: str | None = None
    revision: str | None = None
    latest_ready_revision: str | None = None

    def service_path(self, project: str | None) -> str:
        """``projects/P/locations/R/services/S`` (run_v2's name for the service)."""
        return f"projects/{project}/locations/{self.region}/services/{self.service_name}"


class SageMakerOutputs(StackOutputs):
    """``--provider sagemaker``: the endpoint and the models of its live variants."""

    endpoint_name: str | None = None
    image: str | None = None
    model_data_url: str | None = None
    models: dict[str, dict[str, Any]] = Field(default_factory=dict)  # version -> its model


class AzureOutputs(StackOutputs):
    """``--provider azure``: the function app."""

    app_name: str | None = None
    resource_group: str | None = None
    app_id: str | None = None  # Application Insights' application id
    workspace_id: str | None = None  # Log Analytics
    package_sas_expiry: str | None = None  # Consumption plan: when the package URL expires
