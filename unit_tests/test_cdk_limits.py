"""The one place the connector reaches past the CDK's public components (source_smstools/cdk_limits.py):
these fail when a CDK upgrade moves or renames what it relies on."""

import inspect

import pytest
from airbyte_cdk.sources.declarative.incremental.concurrent_partition_cursor import (
    ConcurrentPerPartitionCursor,
)

import source_smstools.source  # noqa: F401  (importing the source applies the limits)
from source_smstools import cdk_limits


def test_the_limits_are_set_on_the_class_the_cdk_reads_them_from():
    assert ConcurrentPerPartitionCursor.SWITCH_TO_GLOBAL_LIMIT == 50_000
    assert ConcurrentPerPartitionCursor.DEFAULT_MAX_PARTITIONS_NUMBER == 65_000
    # the CDK must read them through the instance at run time, not copy them at import
    code = inspect.getsource(ConcurrentPerPartitionCursor)
    assert "self.SWITCH_TO_GLOBAL_LIMIT" in code
    assert "self.DEFAULT_MAX_PARTITIONS_NUMBER" in code


def test_a_limit_the_cdk_no_longer_has_fails_loudly(monkeypatch):
    monkeypatch.delattr(ConcurrentPerPartitionCursor, "SWITCH_TO_GLOBAL_LIMIT")
    with pytest.raises(RuntimeError, match="SWITCH_TO_GLOBAL_LIMIT"):
        cdk_limits.keep_per_phone_state()
