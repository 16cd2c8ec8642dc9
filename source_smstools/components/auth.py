"""The client secret in its header, and no request at all once the sync has been refused."""

from dataclasses import InitVar, dataclass
from typing import Any, Mapping

from airbyte_cdk.sources.declarative.auth.declarative_authenticator import DeclarativeAuthenticator
from airbyte_cdk.sources.declarative.interpolation.interpolated_string import InterpolatedString
from airbyte_cdk.sources.types import Config

from source_smstools.components.context import sync_of


@dataclass
class SecretHeader(DeclarativeAuthenticator):
    """The client secret in a header (as ApiKeyAuthenticator puts it), and no request at all once
    the sync has been refused (the source's session, components/session.py): the first round of
    workers is all a wrong secret costs."""

    config: Config
    parameters: InitVar[Mapping[str, Any]]
    header: str = ""
    api_token: str = ""

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._token = InterpolatedString.create(self.api_token, parameters=parameters or {})
        self._session = sync_of(self.config).session

    @property
    def auth_header(self) -> str:
        return self.header

    @property
    def token(self) -> str:
        self._session.go_on()
        return str(self._token.eval(self.config))
