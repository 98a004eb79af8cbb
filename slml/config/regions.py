"""Where each cloud may be deployed: a data table, with its source, checked by config.

AWS: every region of the ``aws``, ``aws-cn`` and ``aws-us-gov`` partitions, as listed in
botocore 1.44.5's ``data/endpoints.json`` and identically in pulumi-aws 7.51's
``aws.Region`` enum (late 2026). The isolated partitions (``aws-iso*``, ``aws-eusc``)
are left out: nobody reaches them from a laptop. A region AWS opens later needs one line
here; until then the error says so.

GCP and Azure publish no list that ships with their SDKs, and both add locations often,
so their names are checked for shape only (``europe-west4``; ``westeurope``), which
still catches ``us-east-1`` given to gcp or ``West Europe`` given to azure.
"""

from __future__ import annotations

import difflib
import re

AWS_REGIONS = frozenset(
    {
        "af-south-1", "ap-east-1", "ap-east-2", "ap-northeast-1", "ap-northeast-2",
        "ap-northeast-3", "ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2",
        "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-6",
        "ap-southeast-7", "ca-central-1", "ca-west-1", "eu-central-1", "eu-central-2",
        "eu-north-1", "eu-south-1", "eu-south-2", "eu-west-1", "eu-west-2", "eu-west-3",
        "il-central-1", "me-central-1", "me-south-1", "mx-central-1", "sa-east-1",
        "us-east-1", "us-east-2", "us-west-1", "us-west-2",
        "cn-north-1", "cn-northwest-1",
        "us-gov-east-1", "us-gov-west-1",
    }
)  # fmt: skip
AWS_SOURCE = "botocore 1.44.5 data/endpoints.json (partitions aws, aws-cn, aws-us-gov)"

GCP_REGION = re.compile(r"^[a-z]+(-[a-z]+)+[1-9][0-9]?$")  # us-central1, europe-west4
AZURE_LOCATION = re.compile(r"^[a-z][a-z0-9]{2,29}$")  # eastus, westeurope, uksouth


def check_aws_region(value: str) -> str:
    """``value`` when it is an AWS region of the table; else ValueError naming the
    closest ones."""
    if value in AWS_REGIONS:
        return value
    close = difflib.get_close_matches(value.lower().strip(), sorted(AWS_REGIONS), n=3)
    suggestion = f"; did you mean {' or '.join(close)}?" if close else ""
    raise ValueError(
        f"{value[:40]!r} is not an AWS region (e.g. us-east-1, eu-west-1){suggestion} "
        f"[list from {AWS_SOURCE}]"
    )


def check_gcp_region(value: str) -> str:
    """``value`` when it is shaped like a GCP region (``europe-west4``)."""
    if GCP_REGION.match(value) and len(value) <= 30:
        return value
    raise ValueError(
        f"{value[:40]!r} is not a GCP region name: lowercase words and a number, "
        "e.g. us-central1 or europe-west4"
    )


def check_azure_location(value: str) -> str:
    """``value`` when it is shaped like an Azure location name (``westeurope``)."""
    if AZURE_LOCATION.match(value):
        return value
    hint = re.sub(r"[^a-z0-9]", "", value[:40].lower())
    suggestion = f" (did you mean {hint!r}?)" if AZURE_LOCATION.match(hint) else ""
    raise ValueError(
        f"{value[:40]!r} is not an Azure location name: lowercase letters and digits, "
        f"no spaces, e.g. eastus or westeurope{suggestion}"
    )
