"""An emulator of the Smstools API, for pipeline tests: `smstools-emulator --port 8765`, or
`Emulator(...)` in Python. Shipped with the connector (`pip install 'source-smstools[emulator]'`).

By concern: data.py (the account's data), faults.py (faults on demand), server.py (the HTTP API),
variations.py (how a PHP backend may write answers), shapes.py (answers shaped as a probe report)."""

from smstools_emulator.data import api_date, format_datetime, make_contact, make_conversation, make_message, sample_phones  # noqa: F401
from smstools_emulator.faults import FAULT_KINDS, Faults  # noqa: F401
from smstools_emulator.server import CLIENT_ID, CLIENT_SECRET, Emulator, main  # noqa: F401
from smstools_emulator.shapes import Shapes, load_report  # noqa: F401
from smstools_emulator.variations import VARIATIONS  # noqa: F401
