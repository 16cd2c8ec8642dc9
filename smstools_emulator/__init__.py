"""An emulator of the Smstools API, for pipeline tests: `smstools-emulator --port 8765`, or
`Emulator(...)` in Python. Shipped with the connector (`pip install 'source-smstools[emulator]'`)."""

from smstools_emulator.server import (  # noqa: F401
    CLIENT_ID,
    CLIENT_SECRET,
    FAULT_KINDS,
    Emulator,
    Faults,
    api_date,
    format_datetime,
    main,
    make_contact,
    make_conversation,
    make_message,
    sample_phones,
)
from smstools_emulator.shapes import Shapes, load_report  # noqa: F401
from smstools_emulator.variations import VARIATIONS  # noqa: F401
