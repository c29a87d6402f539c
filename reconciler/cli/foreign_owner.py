"""Whose caps block a `plan --via`: when the CLI's own state never installed anything on a station
and its plan is blocked by a cap the reconciler did not install, the cap may well be another
reconciler's. Typically a `reconciler watch` daemon (the demo) reached through its own inject API:
its ledger is in its state file, not in the CLI's.

Flow: the plan's outcomes -> the blocked stations this state holds nothing for -> with `--via`, ask
the inject API whether it is a reconciler daemon (`GET {base}/healthz`: `service: reconciler`, and
to our credentials its `state_file`) -> the blocked reason says so and how to plan with the daemon's
state (`--db FILE`) or ask it (`GET {base}/plan`); without a daemon answering, a fresh state
blocked on several stations gets the general hint. Ownership is never weakened: the station stays
blocked and nothing is sent; the advice to `prune: foreign` is countered, not followed.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from reconciler.engine.outcome import Outcome
from reconciler.store.sqlite import Store
from reconciler.transport.inject import InjectGateway


async def explain_foreign_caps(outcomes: list[Outcome], gateway: Any, store: Store, state: Path) -> str | None:
    """Rewrite the reasons of stations blocked by caps this state did not install when another
    reconciler likely owns them; return one note for stderr (None: nothing to say)."""
    blocked = [o for o in outcomes if o.plan is not None and o.plan.blocked and not store.ledger(o.station_id)]
    if not blocked or not isinstance(gateway, InjectGateway):
        return None
    identity = await gateway.identify()
    base = gateway.base_url
    if identity is not None:
        named = identity.get("state_file")
        state_file = named if isinstance(named, str) and named else None
        db = f"--db {state_file}" if state_file else "--db <the daemon's state file: its `watch --db`>"
        how = identity.get("chargers")
        # stopped, the daemon no longer answers at `base`: its chargers are reached as it reached them
        chargers = how if isinstance(how, str) and how else "<the daemon's --listen HOST:PORT or --via URL>"
        again = f"reconciler plan {chargers} {db}"
        short = (f"the inject API is a reconciler daemon that likely installed it: ask it (GET {base}/plan), or "
                 f"once it is stopped (it holds that state's lock): {again}")  # fmt: skip
        full = (
            f"the inject API at {base} is a reconciler daemon (`reconciler watch`): this cap is most likely its "
            f"own profile, which this CLI's state ({state}) did not install, so do not set `prune: foreign` (two "
            f"reconcilers would fight over the charger); ask the daemon (GET {base}/plan), or plan with its state "
            f"once it is stopped (while it runs it holds that state's lock): {again}"
        )
        note = (
            f"note: {len(blocked)} station(s) blocked by caps this state ({state}) did not install; {base} is a "
            f"reconciler daemon, whose profiles they most likely are. Ask it for its plan:\n"
            f"  GET {base}/plan\nor, once it is stopped (while it runs it holds that state's lock):\n"
            f"  {again}"
        )
    elif len(blocked) >= 2 and not store.ledger_stations():
        short = "this state is new: if a `reconciler watch` daemon manages these chargers, plan with its --db FILE"
        full = (
            f"this CLI's state ({state}) holds no profile yet: if another reconciler (a `reconciler watch` "
            "daemon) manages these chargers, this cap may be its profile; plan with its state (--db FILE, the "
            "daemon's state file) or ask it (GET /plan) before setting `prune: foreign`"
        )
        note = f"note: {len(blocked)} station(s) blocked by caps this new state ({state}) did not install; {full}"
    else:
        return None
    for outcome in blocked:
        assert outcome.plan is not None and outcome.plan.blocked is not None
        outcome.plan = replace(outcome.plan, blocked=f"{outcome.plan.blocked}. But {full}")
        outcome.reason = f"blocked: a cap this state did not install; {short}"
    return note
