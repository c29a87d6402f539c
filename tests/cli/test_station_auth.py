"""Issue 9 item 8: an explicit, loud opt-out of station authentication for labs."""

from __future__ import annotations

import pytest
import typer

from reconciler.cli.connect import Connection, is_loopback, station_auth


def connection(**flags: bool) -> Connection:
    return Connection(None, "127.0.0.1:9000", 1.0, None, None, None, None, 1.0, **flags)


def test_stations_authenticate_unless_a_lab_says_otherwise():
    assert station_auth("127.0.0.1", 9000, {"*": "pw"}, connection(), 3) is None
    with pytest.raises(typer.BadParameter, match=r"stations must authenticate.*--no-station-auth"):
        station_auth("127.0.0.1", 9000, {}, connection(), 3)
    warning = station_auth("127.0.0.1", 9000, {}, connection(no_station_auth=True), 3)
    assert warning is not None and warning.startswith("WARNING: station authentication is OFF")
    assert "127.0.0.1:9000" in warning and "3 declared station(s)" in warning
    with pytest.raises(typer.BadParameter, match="contradicts"):
        station_auth("127.0.0.1", 9000, {"*": "pw"}, connection(no_station_auth=True), 3)


def test_no_authentication_off_loopback_needs_a_second_flag():
    with pytest.raises(typer.BadParameter, match=r"not a loopback address.*--allow-no-auth-off-loopback"):
        station_auth("0.0.0.0", 9000, {}, connection(no_station_auth=True), 1)
    warning = station_auth("0.0.0.0", 9000, {}, connection(no_station_auth=True, auth_off_loopback=True), 1)
    assert warning is not None and "0.0.0.0:9000" in warning
    assert is_loopback("localhost") and is_loopback("::1") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10") and not is_loopback("example.org")


def test_the_flags_are_on_plan_and_apply():
    from typer.testing import CliRunner

    from reconciler.cli.main import app

    runner = CliRunner()
    for command in ("plan", "apply"):
        result = runner.invoke(app, [command, "--help"])
        assert "--no-station-auth" in result.output and "--allow-no-auth-off-loopback" in result.output
