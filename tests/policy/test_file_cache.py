"""A `FileCache` makes a reload parse only the files whose bytes changed, and the result is always
the one a cold load gives: same stations, desired states and diagnostics (errors included)."""

from __future__ import annotations

from pathlib import Path

from reconciler import clock
from reconciler.policy import PolicySet, load_policies
from reconciler.policy.loader import FileCache
from tests.engine.fleetkit import cap_policy, station_doc, write

IDS = [f"CP-{i:04d}" for i in range(1, 7)]


def files(limit: float = 16) -> dict[str, str]:
    return {
        "stations.yaml": "---\n".join(station_doc(s, "depot") for s in IDS),
        "a.yaml": cap_policy("caps-a", IDS[:3], 20),
        "b.yaml": cap_policy("caps-b", IDS[3:], limit),
    }


def same(warm: PolicySet, cold: PolicySet) -> None:
    assert warm.stations == cold.stations
    assert warm.desired == cold.desired
    assert warm.diagnostics == cold.diagnostics
    assert warm.files == cold.files and warm.skipped == cold.skipped
    assert warm.ok == cold.ok


def test_a_reload_parses_only_changed_files_and_equals_a_cold_load(tmp_path: Path) -> None:
    directory = write(tmp_path / "p", files())
    cache = FileCache()
    first = load_policies([directory], now=clock.now(), cache=cache)
    assert first.ok and cache.parsed_files == 3
    again = load_policies([directory], now=clock.now(), cache=cache)
    assert cache.parsed_files == 0
    same(again, load_policies([directory], now=clock.now()))
    assert again.stations["CP-0001"] is first.stations["CP-0001"]  # built once, while its spec is unchanged

    (directory / "b.yaml").write_text(cap_policy("caps-b", IDS[3:], 12))
    edited = load_policies([directory], now=clock.now(), cache=cache)
    assert cache.parsed_files == 1
    same(edited, load_policies([directory], now=clock.now()))
    limits = {p.profile.schedule.periods[0].limit for p in edited.desired["CP-0004"].profiles}
    assert limits == {12}


def test_an_invalid_edit_is_reported_as_by_a_cold_load_and_a_fix_recovers(tmp_path: Path) -> None:
    directory = write(tmp_path / "p", files())
    cache = FileCache()
    assert load_policies([directory], now=clock.now(), cache=cache).ok
    (directory / "b.yaml").write_text(cap_policy("caps-b", IDS[3:], 12).replace("stackLevel: 0", "stackLevel: -3"))
    broken = load_policies([directory], now=clock.now(), cache=cache)
    assert not broken.ok
    same(broken, load_policies([directory], now=clock.now()))
    assert any("b.yaml" in d.format_text() for d in broken.errors)
    (directory / "b.yaml").write_text(cap_policy("caps-b", IDS[3:], 12))
    fixed = load_policies([directory], now=clock.now(), cache=cache)
    assert fixed.ok
    same(fixed, load_policies([directory], now=clock.now()))


def test_removed_and_added_files_and_stations(tmp_path: Path) -> None:
    directory = write(tmp_path / "p", files())
    cache = FileCache()
    load_policies([directory], now=clock.now(), cache=cache)
    (directory / "b.yaml").unlink()
    (directory / "more.yaml").write_text(station_doc("CP-0099", "depot"))
    changed = load_policies([directory], now=clock.now(), cache=cache)
    assert cache.parsed_files == 1
    same(changed, load_policies([directory], now=clock.now()))
    assert "CP-0099" in changed.stations and not changed.desired["CP-0004"].profiles


def test_a_file_of_ten_thousand_station_documents_is_no_alias_bomb(tmp_path: Path) -> None:
    # Nodes of earlier documents are freed while later ones are read; a freed node's id handed on to
    # a new node must not count as an alias.
    names = [f"CP-{i:05d}" for i in range(10_000)]
    docs = [
        f"apiVersion: reconciler/v1\nkind: Station\nmetadata: {{name: {n}, labels: {{site: s{i // 100}}}}}\n"
        "spec: {connectors: 2, maxCurrentA: 32, phases: 3, voltage: 230}\n"
        for i, n in enumerate(names)
    ]
    (tmp_path / "stations.yaml").write_text("---\n".join(docs))
    loaded = load_policies([tmp_path], now=clock.now())
    assert loaded.ok, [d.format_text() for d in loaded.errors[:3]]
    assert len(loaded.stations) == 10_000


def test_the_documents_of_one_file_share_their_location_paths() -> None:
    """A cached file of 10,000 Station documents held each JSON path (("metadata", "name")...) 10,000
    times over as its own tuple; the documents of a file now share one tuple per path."""
    from reconciler.policy.diagnostics import Collector
    from reconciler.policy.source import parse_text

    diagnostics = Collector()
    first, second = parse_text("---\n".join(station_doc(s, "depot") for s in IDS[:2]), "stations.yaml", diagnostics)
    assert not diagnostics.items
    shared = {k: k for k in first.locations}
    assert second.locations.keys() == first.locations.keys()
    assert all(shared[k] is k for k in second.locations if k), "every path of the second document is the first's"
    assert second.at(("metadata", "name")).line > first.at(("metadata", "name")).line  # each keeps its own lines
