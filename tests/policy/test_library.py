"""The ChargerModel library shipped with the package: valid, chosen by BootNotification, overridable."""

from __future__ import annotations

import textwrap
from pathlib import Path

from reconciler import clock
from reconciler.core.context import Connector0, Uncovered
from reconciler.policy import load_policies
from reconciler.policy.library import choose, context_with, library

STATION = textwrap.dedent("""\
    apiVersion: reconciler/v1
    kind: Station
    metadata: {name: CP-1}
    spec: {connectors: 2, maxCurrentA: 32%s}
    """)


def test_the_library_holds_the_measured_chargers_and_every_document_is_valid():
    names = {m.name for m in library()}
    assert {"reconciler-simulator", "microocpp", "sap-simulator", "everest"} <= names
    assert all(m.builtin for m in library())


def test_a_model_is_chosen_by_the_globs_of_a_boot_notification():
    assert choose(library(), {"chargePointVendor": "MicroOcpp", "chargePointModel": "MicroOcpp Simulator"}).name == (
        "microocpp"
    )
    assert choose(library(), {"vendor": "RECONCILER", "model": "pysim", "firmware": "sim-1.0"}).name == (
        "reconciler-simulator"
    )
    assert choose(library(), {"vendor": "Pionix", "model": "Yeti"}).name == "everest"
    assert choose(library(), {"vendor": "Acme", "model": "Wallbox 3000"}) is None
    assert choose(library(), None) is None


def test_a_station_may_name_a_library_model_and_a_policy_model_overrides_it(tmp_path: Path):
    (tmp_path / "s.yaml").write_text(STATION % ", model: microocpp")
    loaded = load_policies([tmp_path], now=clock.now())
    assert loaded.ok, [d.format_text() for d in loaded.diagnostics]
    context = loaded.stations["CP-1"].context
    assert context.uncovered is Uncovered.MINUS_ONE and context.connector0 is Connector0.CAP_ONLY
    assert not context.tx_default_when_idle and context.capabilities.max_stack_level == 8

    (tmp_path / "m.yaml").write_text(
        textwrap.dedent("""\
        apiVersion: reconciler/v1
        kind: ChargerModel
        metadata: {name: microocpp}
        spec: {vendor: MicroOcpp, conventions: {uncoveredTime: rejected}}
        """)
    )
    overridden = load_policies([tmp_path], now=clock.now())
    assert overridden.ok
    assert overridden.stations["CP-1"].context.uncovered is Uncovered.REJECTED
    assert overridden.models[0].name == "microocpp" and not overridden.models[0].builtin  # the policy's first


def test_a_chosen_model_yields_to_what_the_station_itself_declares(tmp_path: Path):
    (tmp_path / "s.yaml").write_text(STATION % ", conventions: {uncoveredTime: rejected}")
    loaded = load_policies([tmp_path], now=clock.now())
    station = loaded.stations["CP-1"]
    micro = next(m for m in library() if m.name == "microocpp")
    context = context_with(station, micro)
    assert context.uncovered is Uncovered.REJECTED and context.connector0 is Connector0.CAP_ONLY
    assert context.default_limit_a == 32.0 and context.number_of_connectors == 2


def test_an_unknown_model_name_lists_the_library(tmp_path: Path):
    (tmp_path / "s.yaml").write_text(STATION % ", model: nonesuch")
    loaded = load_policies([tmp_path], now=clock.now())
    [error] = loaded.errors
    assert error.code == "unknown-model" and "microocpp" in error.hint and "sap-simulator" in error.hint
