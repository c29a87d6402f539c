"""Who may open a station connection to the embedded Central System: the websocket handshake's check.

The path must be exactly `{path_prefix}{stationId}` (an odd or empty id, more segments or another
prefix: 404); the station must be known (declared, or with a password of its own) unless
`allow_unknown`; a station with a password (its own, or the shared `"*"` one) must present HTTP
basic auth with username = station id (OCPP Security Profile 1; compared in constant time), else
401 with a `WWW-Authenticate` challenge. Refusals are logged without the credentials.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from collections.abc import Iterable, Mapping
from urllib.parse import unquote

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

log = logging.getLogger("reconciler.transport.central_system")


def _basic_credentials(headers: Headers) -> tuple[str, str] | None:
    value = headers.get("Authorization")
    if not value or not value.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(value[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


class Admission:
    def __init__(
        self, path_prefix: str, passwords: Mapping[str, str] | None, known: Iterable[str] | None,
        *, allow_unknown: bool = False,
    ) -> None:  # fmt: skip
        self.path_prefix = "/" + path_prefix.strip("/") + "/" if path_prefix.strip("/") else "/"
        self.allow_unknown = allow_unknown
        self.passwords = dict(passwords or {})
        self.known = set(known or ()) | {k for k in self.passwords if k != "*"}

    def add(self, station_id: str, password: str | None = None) -> None:
        self.known.add(station_id)
        if password is not None:
            self.passwords[station_id] = password

    def station_id(self, path: str) -> str | None:
        """The station id of a request path `{path_prefix}{stationId}`, or None when the path is
        anything else (another prefix, more segments, an empty or odd id)."""
        path = path.split("?", 1)[0]
        if not path.startswith(self.path_prefix):
            return None
        raw = path[len(self.path_prefix) :]
        if not raw or "/" in raw:
            return None
        station_id = unquote(raw)
        if "/" in station_id or len(station_id) > 128 or not station_id.isprintable():
            return None
        return station_id

    def check(self, connection: ServerConnection, request: Request) -> Response | None:
        station_id = self.station_id(request.path)
        if station_id is None:
            log.warning("refused a connection to %.80r: not %s{stationId}", request.path, self.path_prefix)
            return connection.respond(404, f"connect to {self.path_prefix}{{stationId}}\n")
        if station_id not in self.known and not self.allow_unknown:
            log.warning("refused unknown station %r from %s", station_id, connection.remote_address)
            return connection.respond(404, f"unknown station {station_id}\n")
        password = self.passwords.get(station_id, self.passwords.get("*"))
        if password is not None:
            credentials = _basic_credentials(request.headers)
            if (
                credentials is None
                or credentials[0] != station_id
                or not hmac.compare_digest(credentials[1].encode(), password.encode())
            ):
                log.warning("refused station %r: missing or wrong basic auth credentials", station_id)
                response = connection.respond(401, "basic auth required: username = station id\n")
                response.headers["WWW-Authenticate"] = 'Basic realm="ocpp", charset="UTF-8"'
                return response
        return None
