"""What one sync has learned about the API so far, shared by its components: whether the host has
answered yet, and the refusal that ends the sync.

A connection that cannot be made before the host has answered once (a typo in the URL, a closed
port, a name that does not resolve, TLS against a plain-HTTP server) is a setting to fix, said in
seconds; once the host has answered, the same failure is a transient fault, retried as before. A
refusal of the config (credentials, IP address) is said once, and no request is sent after it.

One Session per source, in its shared objects (components/context.py); the authenticator that
sends no request after a refusal is components/auth.py.
"""


import threading
import weakref
from typing import Any, Optional
from urllib.parse import urlsplit

import requests
from airbyte_cdk.models import AirbyteLogMessage, AirbyteMessage, FailureType, Level, StreamDescriptor
from airbyte_cdk.models import Type as MessageType
from airbyte_cdk.utils.traced_exception import AirbyteTracedException
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

# attempts at a connection before the host has answered: a TLS error is the same next time, a
# connect timeout costs its timeout each time (check must end within 30 s), a refusal or a name
# that does not resolve costs nothing and may be a blip
TRIES = {"tls": 1, "timeout": 2, "refused": 3, "dns": 3, "connection": 3}

_CAUSES = {
    "tls": "the TLS handshake failed (is it an https:// URL to a server that speaks plain HTTP, or a proxy?)",
    "timeout": "the connection timed out",
    "refused": "the connection was refused (nothing listens on that port)",
    "dns": "the host name does not resolve",
    "connection": "the connection could not be made",
}


class Refused(AirbyteTracedException):
    """The answer that proves the config wrong (credentials, IP address, a host that cannot be
    reached): one trace with the user's message, nothing of the request or the answer."""

    def __init__(self, message: str) -> None:
        super().__init__(message=message, internal_message=message, failure_type=FailureType.config_error)

    def __repr__(self) -> str:  # the CDK's closing summary lists each failure by its repr
        return self.message or ""


class SaidAlready(Refused):
    """A request not sent, or an answer not read, after the sync's refusal: one log line, not a
    second trace of the same cause."""

    def as_airbyte_message(self, stream_descriptor: Optional[StreamDescriptor] = None) -> AirbyteMessage:
        stream = stream_descriptor.name if stream_descriptor else "a stream"
        return AirbyteMessage(
            type=MessageType.LOG,
            log=AirbyteLogMessage(level=Level.WARN, message=f"{stream}: not read, for the reason said above"),
        )

    def __repr__(self) -> str:
        return "not read, for the reason above"


class Session:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.answered: set[str] = set()  # hosts that answered this sync
        self.refusal: Optional[str] = None
        self._tries: "weakref.WeakKeyDictionary[Any, int]" = weakref.WeakKeyDictionary()

    def refuse(self, message: str) -> Refused:
        """The exception to raise for a refusal: the first of the sync, or one said already."""
        with self._lock:
            if self.refusal is None:
                self.refusal = message
                return Refused(message)
        return SaidAlready(self.refusal)

    def go_on(self) -> None:
        """Raises before a request is sent once the sync has been refused."""
        if self.refusal is not None:
            raise SaidAlready(self.refusal)

    def first_contact(self, exception: Exception) -> Optional[str]:
        """For a connection failure to a host that has not answered this sync: its kind (a key of
        TRIES), counted per request; None for anything else."""
        if not isinstance(exception, requests.ConnectionError) or isinstance(exception, requests.ReadTimeout):
            return None
        request = exception.request
        if request is None or host_of(request.url) in self.answered:
            return None
        with self._lock:
            self._tries[request] = self._tries.get(request, 0) + 1
        return kind_of(exception)

    def tries(self, request: Any) -> int:
        return self._tries.get(request, 0)


def kind_of(exception: requests.ConnectionError) -> str:
    if isinstance(exception, requests.exceptions.SSLError):
        return "tls"
    if isinstance(exception, requests.ConnectTimeout):
        return "timeout"
    reason = getattr(exception.args[0], "reason", None) if exception.args else None
    # urllib3 2: NameResolutionError is a NewConnectionError, itself a ConnectTimeoutError
    if isinstance(reason, NameResolutionError):
        return "dns"
    if isinstance(reason, NewConnectionError):
        return "refused" if "refused" in str(reason).lower() else "connection"
    if isinstance(reason, ConnectTimeoutError):
        return "timeout"
    return "connection"


def unreachable(url: str, kind: str) -> str:
    """The message for a host that cannot be reached: its host and port, never the path (which
    may carry a phone number found in the account)."""
    return (
        f"Cannot reach the Smstools API at {host_of(url)}: {_CAUSES[kind]}. Check API Base URL (base_url; "
        "leave it empty for https://api.smsgatewayapi.com), and that this machine can reach that host "
        "(proxy, firewall, DNS)."
    )


def host_of(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return f"{parts.scheme}://{parts.hostname}:{port}"
