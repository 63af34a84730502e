"""boto3 clients for S3 and Route 53, configured the way every process needs them.

Endpoints come only from boto3's standard configuration (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_S3,
AWS_ENDPOINT_URL_ROUTE_53, profiles): with none set, the clients talk to real AWS. Retries are
botocore's own (adaptive mode), never a hand-written loop.
"""

from __future__ import annotations

import os
from functools import lru_cache

import boto3
from botocore.config import Config

DEFAULT_REGION = "us-east-1"


def _config(max_attempts: int, timeout_s: float) -> Config:
    return Config(
        retries={"mode": "adaptive", "max_attempts": max_attempts},
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        # S3 path-style addressing works on AWS and on any endpoint override alike.
        s3={"addressing_style": "path"},
    )


@lru_cache(maxsize=None)
def _session() -> boto3.session.Session:
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    return boto3.session.Session(region_name=region)


def s3_client(max_attempts: int = 3, timeout_s: float = 5.0):
    return _session().client("s3", config=_config(max_attempts, timeout_s))


def route53_client(max_attempts: int = 5, timeout_s: float = 10.0):
    return _session().client("route53", config=_config(max_attempts, timeout_s))
