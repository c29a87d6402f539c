"""Where a simulated charge point keeps its profiles and settings between restarts, and its log.

Flow: `charge_point.SimulatedChargePoint.save()` after every accepted SetChargingProfile,
ClearChargingProfile and ChangeConfiguration -> `{state_dir}/{station}.json`; `load()` at start
and after a reboot. The file holds the installed profiles as SetChargingProfile payloads (in
installation order) and the writable configuration keys. With the lose-profiles-on-reboot quirk
the profiles are not written. `log()` appends one line per event to `{state_dir}/{station}.log`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from reconciler.core.installed import InstalledProfiles
from reconciler.core.profiles import ProfileError, profile_from_ocpp, profile_to_ocpp


def _safe_name(station_id: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in station_id) or "_"


class StationStorage:
    def __init__(self, state_dir: Path, station_id: str) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        name = _safe_name(station_id)
        self.path = state_dir / f"{name}.json"
        self.log_path = state_dir / f"{name}.log"

    def save(self, profiles: InstalledProfiles | None, configuration: dict[str, str]) -> None:
        data: dict[str, Any] = {"configuration": configuration}
        if profiles is not None:
            data["profiles"] = [
                {"connectorId": e.connector_id, "csChargingProfiles": profile_to_ocpp(e.profile)} for e in profiles
            ]
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)  # atomic: a crash leaves the old or the new file, never half of one

    def load(self) -> tuple[InstalledProfiles | None, dict[str, str]]:
        """(profiles or None when none were stored, writable configuration). A damaged file is
        treated as empty storage, as a charger with corrupt flash would start clean."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None, {}
        if not isinstance(data, dict):
            return None, {}
        configuration = {str(k): str(v) for k, v in (data.get("configuration") or {}).items()}
        raw = data.get("profiles")
        if not isinstance(raw, list):
            return None, configuration
        pairs = []
        for item in raw:
            try:
                pairs.append((int(item["connectorId"]), profile_from_ocpp(item["csChargingProfiles"])))
            except (KeyError, TypeError, ValueError, ProfileError):
                continue
        return InstalledProfiles.of(pairs), configuration

    def log(self, line: str) -> None:
        """Append one line. The file is opened per line: a thousand stations must not hold a
        thousand descriptors, and nothing is left unflushed if the process is killed."""
        with self.log_path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")

    def close(self) -> None:
        """Nothing stays open between writes; kept so callers can release storage uniformly."""
