// The profile viewer: every profile the station should hold (git's, overrides, session intents) with
// purpose, kind, stack level, schedule and origin, whether the ledger holds it, and the composite as bars.
import { renderBars } from "./chart.js";
import { h, replaceChildren } from "./dom.js";
import { duration, kw } from "./format.js";
import { fromGit } from "./station.js";

function periods(schedule) {
  const unit = schedule.chargingRateUnit;
  return (schedule.chargingSchedulePeriod || [])
    .map((p) => `${duration(p.startPeriod)}: ${unit === "W" ? kw(p.limit) : `${p.limit} A`}${p.numberPhases ? ` (${p.numberPhases} ph)` : ""}`)
    .join(" → ");
}

function card(item, installed) {
  const p = item.profile;
  const schedule = p.chargingSchedule || {};
  const facts = [
    ["Purpose", p.chargingProfilePurpose],
    ["Kind", `${p.chargingProfileKind}${p.recurrencyKind ? ` (${p.recurrencyKind})` : ""}`],
    ["Stack level", String(p.stackLevel)],
    ["Connector", item.connector_id === 0 ? "0 (whole station)" : String(item.connector_id)],
    ["Unit", schedule.chargingRateUnit || "—"],
    ["Schedule", periods(schedule) || "—"],
    ["Starts", schedule.startSchedule || (p.chargingProfileKind === "Relative" ? "with each session" : "—")],
    ["Valid", p.validFrom || p.validTo ? `${p.validFrom || "…"} to ${p.validTo || "…"}` : "always"],
    ["From", item.template ? `${item.source} (template ${item.template})` : item.source],
    ["Where", fromGit(item) ? item.location : "override (the API)"],
    ["On the charger", installed ? (installed.confirmed ? "installed (ledger)" : "sent, unconfirmed") : "not installed yet"],
  ];
  return h("article", { class: "profile-card", "data-profile": item.profile_id },
    h("h3", {}, h("span", { text: `#${item.profile_id}` }), h("span", { class: "muted", text: p.chargingProfilePurpose })),
    h("dl", {}, facts.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })])));
}

export function openProfiles(view) {
  const detail = view.detail;
  const dialog = document.getElementById("profiles-dialog");
  document.getElementById("profiles-title").textContent = `Profiles of ${detail.id}`;
  const ledger = new Map((detail.ledger || []).map((e) => [e.profile_id, e]));
  const cards = (detail.desired_profiles || []).map((item) => card(item, ledger.get(item.profile_id)));
  const schedules = view.schedules;
  const total = schedules ? schedules.connectors.find((c) => c.connector_id === 0) : null;
  const bars = total ? [
    h("h3", { text: `Composite, station total, next ${duration(schedules.duration)}: expected` }),
    renderBars(total.expected, { duration: schedules.duration, start: schedules.start, hardware: total.hardware_w }),
    total.observed ? h("h3", { text: "reported by the charger" }) : null,
    total.observed ? renderBars(total.observed, { duration: schedules.duration, start: schedules.start, hardware: total.hardware_w }) : null,
  ] : [];
  replaceChildren(document.getElementById("profiles-body"),
    cards.length ? h("div", { class: "profile-cards" }, cards) : h("p", { class: "muted", text: "No profile applies to this station." }),
    ...bars);
  dialog.showModal();
}
