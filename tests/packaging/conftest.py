"""The template under test, decoded once per module and resolved for the sample deployment of
tests/packaging/test_iam.py (PARAMS), for every test of deploy/aws/dnsctl.yaml."""

from __future__ import annotations

from typing import Any

import pytest

from tests.packaging import cfn_template


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return cfn_template.load()


@pytest.fixture(scope="module")
def resolved(template) -> dict[str, Any]:
    from tests.packaging.test_iam import PARAMS

    return cfn_template.Resolver(template, PARAMS).resolve(template["Resources"])
