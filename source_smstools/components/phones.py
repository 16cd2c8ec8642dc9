"""Phone numbers as people type them (+39 333 100 0000, 0039-333-1000000, (+39) 333.100.0000):
the config's `phone_numbers` brought to one form before anything reads it, in every runtime (the
manifest's `config_normalization_rules` run for check, discover and read)."""

import re
from typing import Any, MutableMapping, Optional

from airbyte_cdk.sources.declarative.transformations.config_transformations.config_transformation import (
    ConfigTransformation,
)
from airbyte_cdk.sources.declarative.validators.validation_strategy import ValidationStrategy

from source_smstools.components.discovery import normalize_phone
from source_smstools.components.session import Refused

EXAMPLE = "+32 470 12 34 56"
_INTERNATIONAL = re.compile(r"^\s*\(?\s*(\+|00)")


def listed_form(value: Any) -> Optional[str]:
    """A configured number as the connector keys it: its digits, with a '+' in front when it was
    typed with '+' or '00' (so '+39 333 100 0000' is '+393331000000', the key a state saved for
    '+393331000000' already has; '393331000000' stays as it is). None when it is no phone number."""
    digits = normalize_phone(value)
    if digits is None:
        return None
    return "+" + digits if _INTERNATIONAL.match(str(value)) else digits


class TypedPhones(ConfigTransformation):
    """`phone_numbers` in their listed form, each once. An entry that is no phone number is left as
    typed, for PhoneNumber to refuse by name."""

    def transform(self, config: MutableMapping[str, Any]) -> None:
        phones = config.get("phone_numbers")
        if not isinstance(phones, list):
            return
        config["phone_numbers"] = list(dict.fromkeys(listed_form(p) or p for p in phones))


class PhoneNumbers(ValidationStrategy):
    """Refuses an entry of `phone_numbers` that cannot be a phone number, naming it and its place
    (as the spec's own validation names a field: `phone_numbers[1]`)."""

    def validate(self, value: Any) -> None:
        for index, phone in enumerate(value if isinstance(value, list) else []):
            if listed_form(phone) is None:
                raise Refused(
                    f"phone_numbers[{index}]: {phone!r} is not a phone number. Expected the country code "
                    f"and the number, 6 to 15 digits, spaces, dashes, dots and brackets allowed, for "
                    f"example {EXAMPLE}."
                )
