"""The one place where the connector reaches past the CDK's public components.

The CDK keeps a cursor per partition (here, per phone) up to `SWITCH_TO_GLOBAL_LIMIT` partitions
(10,000), then falls back to one cursor for all, from which a phone found later starts, skipping
its history. Per-phone state costs about 85 bytes of state and 9 KB of memory a phone
(bench/discovery.py): it is kept up to `PHONES_WITH_OWN_STATE` phones. The manifest has no key for
these limits, so they are set on the CDK's class, once, when the source module is imported.
unit_tests/test_cdk_limits.py fails if a CDK upgrade moves or renames them.
"""

from airbyte_cdk.sources.declarative.incremental.concurrent_partition_cursor import (
    ConcurrentPerPartitionCursor,
)

PHONES_WITH_OWN_STATE = 50_000
# cursors beyond this many are dropped by the CDK (their phones are read again from the start)
PHONES_WITH_A_CURSOR = PHONES_WITH_OWN_STATE + 15_000


def keep_per_phone_state() -> None:
    for name in ("SWITCH_TO_GLOBAL_LIMIT", "DEFAULT_MAX_PARTITIONS_NUMBER"):
        if not isinstance(getattr(ConcurrentPerPartitionCursor, name, None), int):
            raise RuntimeError(f"airbyte-cdk no longer has ConcurrentPerPartitionCursor.{name}: see {__name__}")
    ConcurrentPerPartitionCursor.SWITCH_TO_GLOBAL_LIMIT = PHONES_WITH_OWN_STATE
    ConcurrentPerPartitionCursor.DEFAULT_MAX_PARTITIONS_NUMBER = PHONES_WITH_A_CURSOR
