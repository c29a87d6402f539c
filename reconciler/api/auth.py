"""Who may call the API: HTTP basic or a bearer token, checked on every mutating endpoint.

Flow: request -> `Guard` (a FastAPI dependency, `writer` for anything that changes state,
`reader` for the rest) -> the route. The secret comes from a file (`--credentials FILE`) or the
environment (`RECONCILER_API_USER` / `RECONCILER_API_PASSWORD` / `RECONCILER_API_TOKEN`), never
from a flag value that would show in `ps`. Reading endpoints are open only when the operator says
so (`--open-reads`); `/healthz`, `/readyz`, `/docs` and the OpenAPI document are always open.

Comparison is on UTF-8 bytes with `hmac.compare_digest`, so a non-ASCII user or password (sent by
a client or configured) neither crashes nor leaks timing; a header that is not valid base64 or
UTF-8 is simply wrong credentials (401).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fastapi import HTTPException, Request

REALM = 'Basic realm="reconciler", charset="UTF-8"'
# A script (the dashboard says so with X-Requested-With) gets a Bearer challenge: a Basic one would
# make the browser open its own password prompt over the page, and hold the request until it closes.
SCRIPT_REALM = 'Bearer realm="reconciler"'


class CredentialsError(ValueError):
    """The credentials file cannot be used; the message says which file and what is wrong (no secret)."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """The API's one operator account (basic) and/or a bearer token."""

    user: str | None = None
    password: str | None = None
    token: str | None = None

    @property
    def configured(self) -> bool:
        return bool(self.password) or bool(self.token)

    @classmethod
    def generate(cls, user: str = "admin") -> Credentials:
        """Fresh random credentials (the demo prints them once to the terminal)."""
        return cls(user, secrets.token_urlsafe(16), secrets.token_urlsafe(24))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Credentials:
        env = os.environ if env is None else env
        return cls(
            env.get("RECONCILER_API_USER") or ("admin" if env.get("RECONCILER_API_PASSWORD") else None),
            env.get("RECONCILER_API_PASSWORD") or None,
            env.get("RECONCILER_API_TOKEN") or None,
        )

    @classmethod
    def from_file(cls, path: Path) -> Credentials:
        """A JSON object `{"user", "password", "token"}` or lines `user: ...`, `password: ...`,
        `token: ...` (also `KEY=VALUE`). Errors never quote the file's content."""
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CredentialsError(f"{path}: cannot read the credentials file ({exc.__class__.__name__})") from None
        values: dict[str, str] = {}
        stripped = text.strip()
        if stripped.startswith("{"):
            try:
                data = json.loads(stripped)
            except ValueError:
                raise CredentialsError(f"{path}: not valid JSON") from None
            if not isinstance(data, dict):
                raise CredentialsError(f"{path}: expected an object with user, password and/or token")
            values = {str(k): str(v) for k, v in data.items() if v is not None}
        else:
            for number, line in enumerate(text.splitlines(), start=1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                key, sep, value = line.partition(":") if ":" in line.split("=", 1)[0] else line.partition("=")
                if not sep:
                    raise CredentialsError(f"{path}:{number}: expected `key: value` (user, password or token)")
                values[key.strip().lower()] = value.strip().strip("'\"")
        unknown = set(values) - {"user", "password", "token"}
        if unknown:
            raise CredentialsError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; use user, password, token")
        creds = cls(
            values.get("user") or ("admin" if values.get("password") else None),
            values.get("password") or None,
            values.get("token") or None,
        )
        if not creds.configured:
            raise CredentialsError(f"{path}: no password or token in the credentials file")
        return creds

    def check(self, authorization: str | None) -> bool:
        """Does this Authorization header carry our credentials?"""
        if not authorization:
            return False
        scheme, _, value = authorization.strip().partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer" and self.token:
            return _same(value.strip(), self.token)
        if scheme == "basic" and self.password:
            pair = decode_basic(value)
            if pair is None:
                return False
            user_ok = _same(pair[0], self.user or "")
            password_ok = _same(pair[1], self.password)
            return user_ok and password_ok
        return False


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def decode_basic(value: str) -> tuple[str, str] | None:
    """(user, password) of a basic-auth value, or None when it is not base64 of UTF-8 `user:password`."""
    try:
        decoded = base64.b64decode(value.strip().encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, UnicodeEncodeError, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


class Guard:
    """FastAPI dependencies that answer 401 (with a WWW-Authenticate challenge) without credentials."""

    def __init__(self, credentials: Credentials, *, open_reads: bool = False) -> None:
        self.credentials = credentials
        self.open_reads = open_reads

    def _require(self, request: Request) -> None:
        header = request.headers.get("authorization")
        if not self.credentials.configured or not self.credentials.check(header):
            realm = SCRIPT_REALM if request.headers.get("x-requested-with") else REALM
            raise HTTPException(
                401, "authentication required: HTTP basic or a bearer token", headers={"WWW-Authenticate": realm}
            )

    def require(self, request: Request, *, reads: bool = False) -> None:
        """Raise the 401 a route guarded by `writer` (or by `reader`, `reads=True`) answers."""
        if not (reads and self.open_reads):
            self._require(request)

    async def writer(self, request: Request) -> None:
        self.require(request)

    async def reader(self, request: Request) -> None:
        self.require(request, reads=True)
