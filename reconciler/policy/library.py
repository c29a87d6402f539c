"""The ChargerModel library shipped with the package, and how a station's model is chosen.

Beside the policy flow: `library()` reads `reconciler/policy/models/*.yaml` (ChargerModel
documents, the same schema as in a policy directory) for the chargers measured so far; `resolve`
lets a Station name one (`spec.model: microocpp`) without declaring it, and a policy's own
ChargerModel of the same name overrides it. A Station that names no model gets one chosen from its
BootNotification (`choose`): the first whose `vendor`, `model` and `firmware` globs match, the
policy's own models before the library's; none matching leaves the defaults (EVerest libocpp's).
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

from reconciler.core.context import StationContext
from reconciler.core.wire import RequestError
from reconciler.policy.diagnostics import Collector
from reconciler.policy.documents import ModelSpec, build_model, station_context
from reconciler.policy.model import Station
from reconciler.policy.schema import check_document
from reconciler.policy.source import parse_text


class LibraryError(RuntimeError):
    """A model file shipped with the package is invalid (a packaging bug, never user input)."""


@functools.cache
def library() -> tuple[ModelSpec, ...]:
    """Every ChargerModel shipped with the package, in file name order."""
    folder = resources.files("reconciler.policy") / "models"
    models: list[ModelSpec] = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        diagnostics = Collector()
        for doc in parse_text(entry.read_text(encoding="utf-8"), f"reconciler/policy/models/{entry.name}", diagnostics):
            if check_document(doc, diagnostics) and doc.data.get("kind") == "ChargerModel":
                models.append(build_model(doc, str(doc.data["metadata"]["name"]), builtin=True))
        if diagnostics.items:
            raise LibraryError("; ".join(d.format_text() for d in diagnostics.items))
    return tuple(models)


def _glob(pattern: str | None, value: Any) -> bool:
    if pattern is None:
        return True
    return isinstance(value, str) and fnmatch.fnmatchcase(value.strip().casefold(), pattern.casefold())


def matches(model: ModelSpec, vendor: Any, product: Any, firmware: Any) -> bool:
    """Does a BootNotification (vendor, model, firmware) match the model's globs? A model without
    a vendor is only ever chosen by name."""
    return (
        model.vendor is not None
        and _glob(model.vendor, vendor)
        and _glob(model.product, product)
        and _glob(model.firmware, firmware)
    )


def choose(models: Iterable[ModelSpec], boot: Mapping[str, Any] | None) -> ModelSpec | None:
    """The first model matching a BootNotification payload (or a store's boot record)."""
    if not boot:
        return None
    vendor = boot.get("chargePointVendor", boot.get("vendor"))
    product = boot.get("chargePointModel", boot.get("model"))
    firmware = boot.get("firmwareVersion", boot.get("firmware"))
    return next((m for m in models if matches(m, vendor, product, firmware)), None)


def context_with(station: Station, model: ModelSpec) -> StationContext:
    """The station's context as if it declared `model` (its own conventions still win)."""
    try:
        return station_context(
            station.connectors, station.max_current_a, station.phases, station.voltage, station.own_conventions,
            station.own_capabilities, model,
        )  # fmt: skip
    except RequestError as exc:
        raise LibraryError(f"ChargerModel {model.name}: {exc}") from None
