"""policy: YAML desired state -> validated, resolved desired state per station.

The room between the policy files and the engine (DESIGN §2, §3). `load_policies` runs the flow
source -> schema -> documents -> resolve -> checks and returns a `PolicySet`; nothing here talks
to a charger or reads the clock.
"""

from reconciler.policy.diagnostics import Diagnostic, Location
from reconciler.policy.loader import load_policies
from reconciler.policy.model import DesiredProfile, DesiredState, PolicySet, Station

__all__ = ["DesiredProfile", "DesiredState", "Diagnostic", "Location", "PolicySet", "Station", "load_policies"]
