"""The `source-smstools` command: the Airbyte protocol on the command line."""

import sys
import traceback
from typing import List

import orjson
from airbyte_cdk.entrypoint import AirbyteEntrypoint, launch
from airbyte_cdk.models import (
    AirbyteErrorTraceMessage,
    AirbyteMessage,
    AirbyteMessageSerializer,
    AirbyteTraceMessage,
    FailureType,
    TraceType,
    Type,
)
from airbyte_cdk.utils.datetime_helpers import ab_datetime_now

from source_smstools.source import SourceSmstools


def _source(args: List[str]) -> SourceSmstools:
    # airbyte-cdk 7 builds the streams from the config, catalog and state given to the
    # constructor: those passed later to read() are ignored.
    parsed = AirbyteEntrypoint.parse_args(args)
    config_path = getattr(parsed, "config", None)
    catalog_path = getattr(parsed, "catalog", None)
    state_path = getattr(parsed, "state", None)
    return SourceSmstools(
        config=SourceSmstools.read_config(config_path) if config_path else None,
        catalog=SourceSmstools.read_catalog(catalog_path) if catalog_path else None,
        state=SourceSmstools.read_state(state_path) if state_path else None,
        config_path=config_path,
    )


def run() -> None:
    args = sys.argv[1:]
    try:
        source = _source(args)
    except Exception as error:
        message = AirbyteMessage(
            type=Type.TRACE,
            trace=AirbyteTraceMessage(
                type=TraceType.ERROR,
                emitted_at=ab_datetime_now().to_epoch_millis(),
                error=AirbyteErrorTraceMessage(
                    message=f"The connector could not start: {error}",
                    internal_message=str(error),
                    stack_trace=traceback.format_exc(),
                    failure_type=FailureType.config_error,
                ),
            ),
        )
        print(orjson.dumps(AirbyteMessageSerializer.dump(message)).decode(), flush=True)
        sys.exit(1)
    launch(source, args)


if __name__ == "__main__":
    run()
