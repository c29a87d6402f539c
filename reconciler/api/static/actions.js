// What an operator can do from the dashboard, each through the public API with their credentials:
// the three scenarios (overrides with an expiry), clear all (after saying what self-heal restores),
// suspend/resume, reconcile now, remove an override, and in the demo start/stop/scale. Every result
// and error is a toast carrying the API's own message.
import { del, post } from "./api.js";
import { confirm } from "./dialogs.js";
import { duration, kw } from "./format.js";
import { failed, toast } from "./notices.js";
import { fromGit } from "./station.js";

const watts = (kwValue) => Math.round(Number(kwValue) * 1000);

function ttlSeconds() {
  const minutes = Number(document.getElementById("ttl-minutes").value);
  return Number.isFinite(minutes) && minutes > 0 ? Math.round(minutes * 60) : undefined;
}

function describeEnergy(computed) {
  const seconds = computed.charging_seconds;
  return `${kw(computed.power_limit_w)} for ${duration(seconds)} (${seconds} s), then 0 W: ${(computed.energy_wh / 1000).toFixed(1)} kWh `
    + `of ${(computed.max_energy_wh / 1000).toFixed(1)} kWh, limited by ${computed.limited_by}`;
}

const SCENARIOS = {
  "form-peak": (f) => ({ scenario: "peak_shaving", max_power_w: watts(f.max_kw.value) }),
  "form-tou": (f) => ({
    scenario: "time_of_use", off_peak_w: watts(f.off_peak_kw.value), peak_w: watts(f.peak_kw.value),
    peak_start_hour: Number(f.start.value), peak_end_hour: Number(f.end.value),
  }),
  "form-energy": (f) => {
    const body = {
      scenario: "energy_cap", max_energy_wh: watts(f.energy_kwh.value), power_limit_w: watts(f.power_kw.value),
      duration_seconds: Math.round(Number(f.hours.value) * 3600),
    };
    if (f.transaction.value) body.transaction_id = Number(f.transaction.value);
    return body;
  },
};

function clearAllMessage(detail) {
  const git = (detail.desired_profiles || []).filter(fromGit);
  const overrides = detail.override_details || [];
  const lines = [`ClearChargingProfile without filters removes every charging profile ${detail.id} holds, git's included.`];
  const what = git.map((p) => `#${p.profile_id} (${p.source}, ${p.location})`).join("; ");
  if (!git.length && !overrides.length) {
    lines.push("Nothing in git or in an override applies to this station, so nothing will be restored.");
  } else if (detail.condition === "Suspended") {
    lines.push(`The station is suspended: git's profile(s) ${what || "—"} stay cleared until you resume it; `
      + "until then it runs without them.");
  } else if (detail.sync === "reportOnly") {
    lines.push(`The station is report-only: the loss of ${what || "its overrides"} is shown as drift, not healed.`);
  } else {
    const parts = [];
    if (git.length) parts.push(`git's profile(s) ${what}`);
    if (overrides.length) parts.push(`the active override(s) ${overrides.map((o) => `#${o.id}`).join(", ")}`);
    lines.push(`Self-heal will restore ${parts.join(" and ")} within seconds.`);
  }
  return lines;
}

export function wireStationActions({ view, afterChange }) {
  const station = () => view.id;
  const path = (suffix = "") => `/stations/${encodeURIComponent(station())}${suffix}`;
  const busy = async (button, work) => {
    if (button) button.disabled = true;
    try {
      await work();
    } finally {
      if (button) button.disabled = false;
      await afterChange(station());
    }
  };

  for (const [id, body] of Object.entries(SCENARIOS)) {
    const form = document.getElementById(id);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const output = form.elements.result;
      const payload = { ...body(form.elements), ttl_seconds: ttlSeconds(), reason: "dashboard" };
      output.className = "result";
      output.textContent = "sending…";
      busy(form.querySelector("button[type=submit]"), async () => {
        try {
          const answer = await post(path("/test_profiles"), payload);
          const computed = answer.scenario === "energy_cap" ? describeEnergy(answer.computed) : null;
          output.className = `result ${answer.status === "success" ? "ok" : "error"}`;
          output.textContent = computed ? `Computed: ${computed}` : answer.message;
          toast(computed ? `${computed}. ${answer.message}` : answer.message, {
            kind: answer.status === "success" ? "ok" : "error", title: `${answer.scenario} on ${answer.station_id}`,
          });
        } catch (error) {
          output.className = "result error";
          output.textContent = error.detail || String(error);
          failed(`${payload.scenario} on ${station()}`, error);
        }
      });
    });
  }

  document.getElementById("act-reconcile").addEventListener("click", (event) => busy(event.currentTarget, async () => {
    try {
      const answer = await post("/reconcile", { station_id: station(), wait: 30 });
      const outcome = answer.outcomes[station()];
      toast(outcome ? `${outcome.condition}${outcome.reason ? `: ${outcome.reason}` : ""}` : "queued",
        { title: `Reconciled ${station()}` });
    } catch (error) {
      failed(`Reconcile ${station()}`, error);
    }
  }));

  document.getElementById("act-suspend").addEventListener("click", (event) => busy(event.currentTarget, async () => {
    try {
      const answer = await post(path("/suspend"), { reason: "suspended from the dashboard" });
      toast(answer.message, { title: `${station()} suspended` });
    } catch (error) {
      failed(`Suspend ${station()}`, error);
    }
  }));

  document.getElementById("act-resume").addEventListener("click", (event) => busy(event.currentTarget, async () => {
    try {
      const answer = await post(path("/resume"), {});
      toast(`reconciling again: ${answer.condition || "queued"}${answer.reason ? ` (${answer.reason})` : ""}`, { title: `${station()} resumed` });
    } catch (error) {
      failed(`Resume ${station()}`, error);
    }
  }));

  document.getElementById("act-clear").addEventListener("click", async (event) => {
    const button = event.currentTarget;
    if (!view.detail) return;
    const ok = await confirm({ title: `Clear all profiles on ${station()}?`, message: clearAllMessage(view.detail), confirmLabel: "Clear all profiles" });
    if (!ok) return;
    await busy(button, async () => {
      try {
        const answer = await del(path("/charging_profile"));
        toast(answer.message, { kind: answer.status === "success" ? "ok" : "error", title: `Cleared ${station()}` });
      } catch (error) {
        failed(`Clear ${station()}`, error);
      }
    });
  });

  document.getElementById("overrides").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-override]");
    if (!button) return;
    busy(button, async () => {
      try {
        const answer = await del(`/overrides/${button.dataset.override}`);
        toast(answer.message, { title: `Override #${answer.override_id}` });
      } catch (error) {
        failed(`Remove override #${button.dataset.override}`, error);
      }
    });
  });

  for (const [id, verb] of [["act-start", "start"], ["act-stop", "stop"]]) {
    document.getElementById(id).addEventListener("click", (event) => busy(event.currentTarget, async () => {
      try {
        await post(path(`/${verb}`), {});
        toast(verb === "start" ? "simulated station started; it connects and is reconciled" : "simulated station stopped",
          { title: `${station()} ${verb}` });
      } catch (error) {
        failed(`${verb} ${station()}`, error);
      }
    }));
  }
}

export function wireFleetActions({ fleet, afterChange }) {
  const ids = () => [...fleet.selected];
  const run = async (button, title, each) => {
    button.disabled = true;
    const results = await Promise.allSettled(ids().map((id) => each(id)));
    const failures = results.filter((r) => r.status === "rejected");
    if (failures.length) failed(title, failures[0].reason);
    else toast(`${results.length} station(s)`, { title });
    button.disabled = fleet.selected.size === 0;
    await afterChange(null);
  };
  document.getElementById("bulk-reconcile").addEventListener("click", (event) => run(event.currentTarget, "Reconciled",
    (id) => post("/reconcile", { station_id: id, wait: 30 })));
  document.getElementById("bulk-resume").addEventListener("click", (event) => run(event.currentTarget, "Resumed",
    (id) => post(`/stations/${encodeURIComponent(id)}/resume`, {})));
  document.getElementById("bulk-suspend").addEventListener("click", async (event) => {
    const button = event.currentTarget;
    const chosen = ids();
    const ok = await confirm({
      title: `Suspend ${chosen.length} station(s)?`, confirmLabel: "Suspend",
      message: [`Reconciling stops for ${chosen.slice(0, 8).join(", ")}${chosen.length > 8 ? "…" : ""}: manual changes stay and drift is not healed until you resume them.`],
    });
    if (ok) await run(button, "Suspended", (id) => post(`/stations/${encodeURIComponent(id)}/suspend`, { reason: "suspended from the dashboard" }));
  });
}

export function wireDemoControls({ afterChange }) {
  const form = document.getElementById("demo-controls");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const target = Number(form.elements.count.value);
    try {
      const answer = await post("/stations/scale", { target_count: target });
      toast(`${answer.running.length} simulated station(s) running`, { title: `Scaled to ${target}` });
    } catch (error) {
      failed("Scale", error);
    }
    await afterChange(null);
  });
}

export function selectionChanged(selected) {
  const count = selected.size;
  document.getElementById("selection-count").textContent = `${count} selected`;
  for (const id of ["bulk-reconcile", "bulk-suspend", "bulk-resume"]) document.getElementById(id).disabled = count === 0;
}

