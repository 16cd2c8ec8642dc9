"""Test-only: shorter retry waits and read timeout for the connector run by integration_tests.

The product has no such knob (its waits are the manifest's, in every runtime). The tests that run
the command in a process of its own put this directory on PYTHONPATH (integration_tests/cli.py),
and Python imports this module at start-up: with SMSTOOLS_BACKOFF_FACTOR or SMSTOOLS_READ_TIMEOUT
set, every declarative source built in that process (ours, or the CDK's generic runtime) gets its
manifest with those values. In-process tests use `shortened` around the run instead.
"""

import contextlib
import os
from typing import Any, Iterator, Mapping

FACTOR, TIMEOUT = "SMSTOOLS_BACKOFF_FACTOR", "SMSTOOLS_READ_TIMEOUT"


def shorten(manifest: Any, values: Mapping[str, str]) -> Any:
    """`manifest` with the exponential backoff's factor and the requester's read timeout of `values`."""
    definitions = manifest.get("definitions", {}) if isinstance(manifest, dict) else {}
    if values.get(FACTOR):
        for strategy in definitions.get("backoff_strategies", []):
            if strategy.get("type") == "ExponentialBackoffStrategy":
                strategy["factor"] = float(values[FACTOR])
    if values.get(TIMEOUT) and "requester" in definitions:
        definitions["requester"]["read_timeout_in_seconds"] = float(values[TIMEOUT])
    return manifest


def _patched_init(original: Any, values: Mapping[str, str]) -> Any:
    def __init__(self: Any, *args: Any, source_config: Any, **kwargs: Any) -> None:
        original(self, *args, source_config=shorten(source_config, values), **kwargs)

    return __init__


@contextlib.contextmanager
def shortened(values: Mapping[str, str]) -> Iterator[None]:
    """The sources built inside get `values`' waits and timeout (nothing changes without them)."""
    from airbyte_cdk.sources.declarative.concurrent_declarative_source import ConcurrentDeclarativeSource

    original = ConcurrentDeclarativeSource.__init__
    if values.get(FACTOR) or values.get(TIMEOUT):
        ConcurrentDeclarativeSource.__init__ = _patched_init(original, dict(values))  # type: ignore[method-assign]
    try:
        yield
    finally:
        ConcurrentDeclarativeSource.__init__ = original  # type: ignore[method-assign]


if os.environ.get(FACTOR) or os.environ.get(TIMEOUT):
    # for the life of this process (started by a test, with this directory on PYTHONPATH); kept in
    # a name: a context manager nobody holds is collected at once, and its exit undoes the patch
    _FOR_THIS_PROCESS = shortened(dict(os.environ))
    _FOR_THIS_PROCESS.__enter__()
