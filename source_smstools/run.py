"""The `source-smstools` command: the CDK's `launch(source, args)`, as the catalogue's connectors
run it (the source built from the files given, since airbyte-cdk 7 takes them at construction),
with the two things the CDK does not do for us and no component can (they happen before any
component runs): the client secret hidden in the forms a message may quote it in, and a config
error that names its field. Everything the connector does is in manifest.yaml and its components."""

import sys
import time
import traceback
from typing import Any, Callable, List, Mapping, Optional

import orjson
from airbyte_cdk.entrypoint import AirbyteEntrypoint
from airbyte_cdk.logger import PRINT_BUFFER
from airbyte_cdk.models import (
    AirbyteErrorTraceMessage,
    AirbyteMessage,
    AirbyteMessageSerializer,
    AirbyteTraceMessage,
    FailureType,
    TraceType,
    Type,
)
from airbyte_cdk.sources.utils.schema_helpers import split_config
from airbyte_cdk.utils.airbyte_secrets_utils import add_to_secrets, filter_secrets, get_secrets
from airbyte_cdk.utils.datetime_helpers import ab_datetime_now
from airbyte_cdk.utils.traced_exception import AirbyteTracedException
from airbyte_cdk.utils.yaml_loader import safe_load_yaml
from jsonschema import Draft7Validator
from jsonschema.exceptions import best_match

from source_smstools.source import MANIFEST, SourceSmstools


class _Entrypoint(AirbyteEntrypoint):
    """The CDK's entry point, with the secret's variants hidden and a config error that names its field."""

    @staticmethod
    def set_up_secret_filter(config: Any, connection_specification: Mapping[str, Any]) -> None:
        # the CDK's replaces the secrets hidden so far with the config's exact ones
        AirbyteEntrypoint.set_up_secret_filter(config, connection_specification)
        _hide_secret_variants(config, connection_specification)

    @staticmethod
    def validate_connection(source_spec: Any, config: Any) -> None:
        # The CDK's message leaves out which field is wrong ("Config validation error: '' is too
        # short"); this one starts with the field's name.
        problem = _config_problem(config, source_spec.connectionSpecification)
        if problem:
            raise AirbyteTracedException(
                message=f"Config validation error: {problem}",
                internal_message=problem,
                failure_type=FailureType.config_error,
            )


def _config_problem(config: Mapping[str, Any], specification: Mapping[str, Any]) -> Optional[str]:
    """What is wrong with `config`, starting with the field's name; None when nothing is."""
    connector_config, _ = split_config(config)
    error = best_match(Draft7Validator(specification).iter_errors(connector_config))
    if error is not None:
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
        message = error.message
        if error.validator == "pattern" and error.schema.get("pattern_descriptor"):
            message = f"{error.instance!r} is not in the form {error.schema['pattern_descriptor']}"
        return f"{field + ': ' if field else ''}{message}"
    start_date = connector_config.get("start_date")
    try:
        if start_date:
            time.strptime(start_date, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:  # the pattern lets 2024-02-30 through
        return f"start_date: {start_date!r} is not a date and time that exists"
    return None


def _hide_secret_variants(config: Any, connection_specification: Mapping[str, Any]) -> None:
    # The CDK hides each secret exactly as configured; a message that quotes it escaped (a secret
    # pasted with a trailing newline shows as 'abc\\n') or trimmed would show it in clear.
    for secret in get_secrets(connection_specification, config or {}):
        text = str(secret)
        for variant in {text.strip(), repr(text)[1:-1], orjson.dumps(text).decode()[1:-1]} - {text, ""}:
            add_to_secrets(variant)


def _source(args: List[str]) -> SourceSmstools:
    """The source of the files `args` names (config, catalog, state), the secrets hidden first."""
    parsed = AirbyteEntrypoint.parse_args(args)
    config_path = getattr(parsed, "config", None)
    catalog_path = getattr(parsed, "catalog", None)
    state_path = getattr(parsed, "state", None)
    config = SourceSmstools.read_config(config_path) if config_path else None
    if isinstance(config, Mapping):
        # hidden before anything can fail, so that the message of a failure below cannot show them
        spec = safe_load_yaml(MANIFEST.read_text())["spec"]["connection_specification"]
        _Entrypoint.set_up_secret_filter(config, spec)
        if _config_problem(config, spec):
            # Streams built from it could fail first, less clearly ("default_concurrency did not
            # evaluate to an integer"); without it, the entry point reads the file and refuses it
            # by field name (check: FAILED, discover and read: an error trace and exit status 1).
            config = None
    return SourceSmstools(
        config=config,
        catalog=_read("catalog", SourceSmstools.read_catalog, catalog_path),
        state=_read("state", SourceSmstools.read_state, state_path),
        config_path=config_path,
    )


def _read(name: str, read: Callable[[str], Any], path: Optional[str]) -> Any:
    # The CDK's own words for a state of the wrong shape do not say which file is wrong
    # ("Schema validation failed: - "conversation" is not of type "object"").
    if not path:
        return None
    try:
        return read(path)
    except Exception as error:
        raise ValueError(f"the {name} file {path} is not usable: {error}") from error


def run() -> None:
    args = sys.argv[1:]
    try:
        source = _source(args)
    except Exception as error:
        # before the CDK's entry point (and its exception hook) exists: said as it would say it
        message = AirbyteMessage(
            type=Type.TRACE,
            trace=AirbyteTraceMessage(
                type=TraceType.ERROR,
                emitted_at=ab_datetime_now().to_epoch_millis(),
                error=AirbyteErrorTraceMessage(
                    message=filter_secrets(f"The connector could not start: {error}"),
                    internal_message=filter_secrets(str(error)),
                    stack_trace=filter_secrets(traceback.format_exc()),
                    failure_type=FailureType.config_error,
                ),
            ),
        )
        print(orjson.dumps(AirbyteMessageSerializer.dump(message)).decode(), flush=True)
        sys.exit(1)
    # airbyte_cdk.entrypoint.launch, with our entry point; a failed read raises out of it, so the
    # exit status is non-zero (and the CDK's exception hook prints it as a trace)
    entrypoint = _Entrypoint(source)
    with PRINT_BUFFER:
        for message in entrypoint.run(entrypoint.parse_args(args)):
            print(f"{message}\n", end="")


if __name__ == "__main__":
    run()
