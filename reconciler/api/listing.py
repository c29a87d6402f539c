"""The body of `GET /stations`, kept current piece by piece instead of rebuilt per request.

Flow: a change to a station (the store's listeners: condition, ledger, overrides, suspension,
intents; the daemon: connect, boot, disconnect, meter values, transactions, a finished reconcile;
a policy reload that changed the station) -> `touch(station)` marks its fragment stale and bumps
`version` -> `GET /stations` -> `body(condition, selector)` rebuilds only the stale fragments (and
those whose limits reach the next period of their schedule) -> joins the fragments that pass the
filters into one JSON array, kept per (version, filter, second) and served as bytes (gzip-compressed
once per body for the clients that accept it).

A fragment is one station's entry (`views.summary_until`) serialized once, split around its
`next_check_s`, which is the one field that changes by itself every second: it is written in when
the body is joined (so it is at most a second old). The entry's fields, filters and order are those
of `views.stations`, which builds the same list from scratch (tests compare the two).
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reconciler import clock
from reconciler.api.views import summary_until
from reconciler.core.profiles import epoch_seconds
from reconciler.policy import PolicySet
from reconciler.policy.model import labels_match

if TYPE_CHECKING:
    from reconciler.daemon.service import Daemon

_MARK = "\u0000next_check_s\u0000"
_MARK_JSON = json.dumps(_MARK).encode()
_BODIES = 8  # filtered bodies kept for the current version (a body of 10,000 stations is about 7 MB)


@dataclass(frozen=True, slots=True)
class _Fragment:
    condition: str | None  # lower case, for ?condition=
    head: bytes  # the entry's JSON up to the value of next_check_s
    tail: bytes  # and after it
    until: float  # epoch second from which the limits shown may differ


class StationListing:
    """Per-station fragments of `GET /stations` and the joined bodies, for one daemon."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.version = 0  # bumped by every change a listed entry shows
        self.rebuilt = 0  # fragments built so far (for tests and the bench)
        self._fragments: dict[str, _Fragment] = {}
        self._stale: set[str] = set()
        self._order: list[str] = []
        self._policies: PolicySet | None = None
        self._expires = math.inf  # the earliest `until` of the fragments
        self._bodies: dict[tuple[str | None, str | None], tuple[tuple[int, int], bytes]] = {}
        self._compressed: dict[tuple[str | None, str | None], tuple[bytes, bytes]] = {}  # plain body -> gzip

    def touch(self, station_id: str) -> None:
        """Something `station_id`'s entry shows may have changed."""
        self._stale.add(station_id)
        self.version += 1

    def body(
        self,
        condition: str | None,
        selector: dict[str, str] | None,
        selector_text: str | None,
        *,
        gzipped: bool = False,
    ) -> bytes:
        """The JSON array of the stations that pass the filters, in id order (gzip-compressed if asked:
        about a fifteenth of the bytes to send, compressed once per version for every client)."""
        plain = self._body(condition, selector, selector_text)
        if not gzipped:
            return plain
        key = (condition.lower() if condition is not None else None, selector_text)
        cached = self._compressed.get(key)
        if cached is not None and cached[0] is plain:
            return cached[1]
        compressed = gzip.compress(plain, compresslevel=1, mtime=0)
        if len(self._compressed) >= _BODIES:
            self._compressed.clear()
        self._compressed[key] = (plain, compressed)
        return compressed

    def _body(self, condition: str | None, selector: dict[str, str] | None, selector_text: str | None) -> bytes:
        self._refresh()
        key = (condition.lower() if condition is not None else None, selector_text)
        stamp = (self.version, int(clock.monotonic()))
        cached = self._bodies.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        queue = self.daemon.queue
        stations = self.daemon.policies.stations
        parts: list[bytes] = []
        for name in self._order:
            fragment = self._fragments[name]
            if key[0] is not None and fragment.condition != key[0]:
                continue
            if selector and not labels_match(selector, stations[name].labels):
                continue
            following = queue.next_check(name)
            parts.append(fragment.head + (b"null" if following is None else repr(following).encode()) + fragment.tail)
        body = b"[" + b", ".join(parts) + b"]"
        if len(self._bodies) >= _BODIES:
            self._bodies.clear()
        self._bodies[key] = (stamp, body)
        return body

    def _refresh(self) -> None:
        daemon = self.daemon
        policies = daemon.policies
        if policies is not self._policies:
            self._reloaded(self._policies, policies)
        now_s = epoch_seconds(daemon.now())
        if now_s >= self._expires:
            self._stale.update(n for n, f in self._fragments.items() if f.until <= now_s)
        if not self._stale:
            return
        for name in self._stale:
            if name in policies.stations:
                self._fragments[name] = self._build(name)
                self.rebuilt += 1
        self._stale.clear()
        self._expires = min((f.until for f in self._fragments.values()), default=math.inf)
        self.version += 1

    def _reloaded(self, old: PolicySet | None, new: PolicySet) -> None:
        """New policies: entries whose station or desired state changed are stale, removed ones go."""
        self._policies = new
        self._order = sorted(new.stations)
        for name in list(self._fragments):
            if name not in new.stations:
                del self._fragments[name]
        revision_changed = old is None or old.revision != new.revision
        for name in self._order:
            fragment = self._fragments.get(name)
            if (
                fragment is None
                or old is None
                or old.stations.get(name) != new.stations[name]
                or old.desired.get(name) != new.desired.get(name)
                or (revision_changed and fragment.condition is None)  # they show the policies' revision
            ):
                self._stale.add(name)
        self.version += 1

    def _build(self, station_id: str) -> _Fragment:
        daemon = self.daemon
        condition = daemon.condition(station_id)
        entry, until = summary_until(daemon, station_id, condition)
        entry["next_check_s"] = _MARK
        text = json.dumps(entry).encode()
        head, _, tail = text.partition(_MARK_JSON)
        return _Fragment(condition.status.value.lower() if condition else None, head, tail, until)


def listing_of(daemon: Daemon) -> StationListing:
    """A listing of the daemon's stations, told of every change from now on."""
    listing = StationListing(daemon)
    assert daemon.store is not None
    daemon.store.listeners.append(listing.touch)
    daemon.listeners.append(listing.touch)
    return listing
