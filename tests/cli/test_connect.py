"""How plan/apply reach chargers (issue 12 items 9 and 10): declared stations are admitted even when
not selected; wss:// with TLS 1.2+ (OCPP Security Profile 2) against a self-signed certificate made
here; a warning for Basic auth in clear on a non-loopback address."""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import ssl
from pathlib import Path

import pytest
import typer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from reconciler.cli.connect import Connection, open_gateway, tls_context
from reconciler.simulator.fleet import Fleet
from tests.cli.clikit import free_port
from tests.engine.fleetkit import PASSWORD, WAIT

IDS = ["CP-0001", "CP-0002", "CP-0003"]


def connection(port: int, **kwargs: object) -> Connection:
    return Connection(None, f"127.0.0.1:{port}", WAIT, None, None, PASSWORD, None, 5.0, **kwargs)  # type: ignore


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_file, key_file


async def test_declared_stations_that_are_not_selected_are_admitted_not_refused():
    port = free_port()
    fleet = Fleet(f"ws://127.0.0.1:{port}", 3, prefix="CP-", password=PASSWORD, backoff_initial=0.05, backoff_max=0.2)
    async with fleet, open_gateway(connection(port), ["CP-0001"], admit=IDS, echo=False) as (gateway, reachable):
        assert reachable == {"CP-0001"}
        assert await gateway.wait_for_stations(IDS, WAIT, booted=False) == set(IDS)  # type: ignore[attr-defined]
        # the precise refusal: a refused TCP connect before the gateway listens names the port,
        # which may itself hold "404" (port 34042: the flake of CI stop 14)
        refused = [c.last_error for c in fleet.clients.values() if (c.last_error or "").startswith("refused with HTTP")]
        assert refused == []


async def test_wss_with_a_self_signed_certificate_and_tls_1_2_or_newer(tmp_path: Path):
    cert, key = self_signed(tmp_path)
    port = free_port()
    trust = ssl.create_default_context(cafile=str(cert))
    fleet = Fleet(f"wss://127.0.0.1:{port}", 2, prefix="CP-", password=PASSWORD, backoff_initial=0.05,
                  backoff_max=0.2, ssl_context=trust)  # fmt: skip
    secure = connection(port, tls_cert=cert, tls_key=key)
    async with fleet, open_gateway(secure, IDS[:2], echo=False) as (gateway, reachable):
        assert reachable == set(IDS[:2])
        assert gateway.url.startswith("wss://")  # type: ignore[attr-defined]
        reply = await gateway.call("CP-0001", "GetConfiguration", {"key": ["ChargeProfileMaxStackLevel"]})
        assert reply.ok, reply.describe()
    context = tls_context(secure)
    assert context is not None and context.minimum_version >= ssl.TLSVersion.TLSv1_2


async def test_plain_ws_clients_cannot_talk_to_a_wss_central_system(tmp_path: Path):
    cert, key = self_signed(tmp_path)
    port = free_port()
    fleet = Fleet(f"ws://127.0.0.1:{port}", 1, prefix="CP-", password=PASSWORD, backoff_initial=0.05,
                  backoff_max=0.2)  # fmt: skip
    secure = connection(port, tls_cert=cert, tls_key=key)
    secure = dataclasses.replace(secure, wait=1.0)
    async with fleet, open_gateway(secure, IDS[:1], echo=False) as (_, reachable):
        assert reachable == set()


def test_a_certificate_that_cannot_be_loaded_is_a_clear_error(tmp_path: Path):
    (tmp_path / "bad.pem").write_text("not a certificate")
    with pytest.raises(typer.BadParameter, match="cannot load the certificate"):
        tls_context(Connection(None, "127.0.0.1:1", 1, None, None, "x", None, 1, tmp_path / "bad.pem", None))


async def test_basic_auth_in_clear_on_a_non_loopback_address_is_warned_about(capsys: pytest.CaptureFixture[str]):
    # 0.0.0.0 binds every interface, loopback included; nothing outside this machine is contacted
    port = free_port()
    async with open_gateway(Connection(None, f"0.0.0.0:{port}", 0.0, None, None, PASSWORD, None, 1.0), ["CP-0001"]):
        pass
    err = capsys.readouterr().err
    assert "serves ws:// without TLS: stations send their Basic-auth passwords in clear" in err
    loopback = Connection(None, f"127.0.0.1:{free_port()}", 0.0, None, None, PASSWORD, None, 1.0)
    async with open_gateway(loopback, ["CP-0001"]):
        pass
    assert "without TLS" not in capsys.readouterr().err
