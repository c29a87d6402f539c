// The station view: what the station should be (desired profiles with their policy file:line,
// overrides with expiry), what it is (ledger, connectors, capabilities, events) and the schedule charts.
// Reads GET /stations/{id}, /stations/{id}/connectors and /stations/{id}/schedules; refreshes in place.
import { get } from "./api.js";
import { renderChart } from "./chart.js";
import { badge, h, replaceChildren, table } from "./dom.js";
import { ago, kw, labels, localTime, revision, until } from "./format.js";

export function fromGit(item) {
  const where = item.location || "";
  return !where.startsWith("override #") && !where.startsWith("session ");
}

export class StationView {
  constructor({ onError }) {
    this.id = null;
    this.detail = null;
    this.connectors = null;
    this.schedules = null;
    this.range = 86400;
    this.onError = onError;
    this.seq = { detail: 0, charts: 0 };
    this.chartsBox = document.getElementById("charts");
    for (const button of document.querySelectorAll(".segmented button[data-range]")) {
      button.addEventListener("click", () => {
        this.range = Number(button.dataset.range);
        for (const other of document.querySelectorAll(".segmented button[data-range]")) {
          other.setAttribute("aria-pressed", String(other === button));
        }
        this.refreshCharts();
      });
    }
  }

  async open(id) {
    if (this.id !== id) {
      this.id = id;
      this.detail = this.connectors = this.schedules = null;
      document.getElementById("station-title").textContent = id;
      for (const box of ["station-badge", "station-control", "station-reason", "station-facts", "overrides", "connectors",
        "desired", "ledger", "capabilities", "events"]) document.getElementById(box).replaceChildren();
      this.chartsBox.replaceChildren(h("p", { class: "muted", text: "loading schedules…" }));
    }
    await Promise.all([this.refresh(), this.refreshCharts()]);
  }

  close() {
    this.id = null;
  }

  async refresh() {
    const id = this.id;
    if (!id) return;
    const mine = ++this.seq.detail;
    try {
      const [detail, connectors] = await Promise.all([
        get(`/stations/${encodeURIComponent(id)}`),
        get(`/stations/${encodeURIComponent(id)}/connectors`),
      ]);
      if (mine !== this.seq.detail || id !== this.id) return;
      this.detail = detail;
      this.connectors = connectors;
      this.render();
    } catch (error) {
      if (id === this.id) this.onError(`Station ${id}`, error);
    }
  }

  async refreshCharts() {
    const id = this.id;
    if (!id) return;
    const mine = ++this.seq.charts;
    try {
      const schedules = await get(`/stations/${encodeURIComponent(id)}/schedules`, { duration: this.range });
      if (mine !== this.seq.charts || id !== this.id) return;
      this.schedules = schedules;
      this.renderCharts();
    } catch (error) {
      if (id === this.id) this.onError(`Schedules of ${id}`, error);
    }
  }

  render() {
    const d = this.detail;
    const control = d.control || { text: d.control_source, kind: "hardware", evidence: "" };
    replaceChildren(document.getElementById("station-badge"), badge(d.condition, d.reason));
    const source = document.getElementById("station-control");
    source.textContent = control.text;
    source.className = `control-badge ${control.kind}`;
    source.title = control.evidence;
    document.getElementById("station-reason").textContent = d.reason || "";
    const limit = d.limit || {};
    const facts = [
      ["Connected", d.connected ? "yes" : "no"],
      ["Control", `${control.text}: ${control.evidence}`],
      ["Power drawn / limit", `${d.power_w == null ? "—" : kw(d.power_w)} / ${limit.source === "unknown" ? "unknown" : kw(limit.value_w)}`],
      ["Limit set by", limit.governed_by ? `${limit.source}: ${limit.governed_by}` : limit.source || "—"],
      ["Limit read back", limit.evidence || "—"],
      ["Last reconcile", d.last_reconcile ? `${ago(d.last_reconcile)} (${localTime(d.last_reconcile)})` : "not yet"],
      ["Next check", d.next_check_s == null ? "—" : `in about ${Math.round(d.next_check_s)} s`],
      ["Git revision", revision(d.revision)],
      ["Sync", d.sync === "reportOnly" ? "report-only (drift is shown, not healed)" : "self-heal"],
      ["Site", d.site || "—"],
      ["Labels", labels(d.labels).join(", ") || "—"],
      ["Model", [d.vendor, d.model].filter(Boolean).join(" ") || "—"],
    ];
    replaceChildren(document.getElementById("station-facts"), facts.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })]));
    const suspended = d.condition === "Suspended";
    document.getElementById("act-suspend").hidden = suspended;
    document.getElementById("act-resume").hidden = !suspended;
    this.renderOverrides();
    this.renderConnectors();
    this.renderDesired();
    this.renderLedger();
    this.renderCapabilities();
    this.renderEvents();
  }

  renderOverrides() {
    const items = this.detail.override_details || [];
    const box = document.getElementById("overrides");
    if (!items.length) return replaceChildren(box, h("p", { class: "muted", text: "No override: the station follows git." }));
    replaceChildren(box, table(["#", "Profile", "Connector", "Scenario", "By", "Why", "Expires", ""], items.map((o) => [
      `#${o.id}`, `#${o.profile_id}`, String(o.connector_id), o.scenario || "—", o.who, o.why || "—",
      h("span", { title: localTime(o.expires_at), text: until(o.expires_at) }),
      h("td", {}, h("button", { type: "button", class: "remove-override", "data-override": o.id, "aria-label": `Remove override #${o.id}`, text: "Remove" })),
    ]), "Active overrides"));
  }

  renderConnectors() {
    const rows = (this.connectors && this.connectors.connectors) || [];
    const unknown = Boolean(this.connectors && this.connectors.limit && this.connectors.limit.source === "unknown");
    const box = document.getElementById("connectors");
    replaceChildren(box, table(["Connector", "Status", "Transaction", "Power", "Offered", "Energy", "Limit"], rows.map((c) => [
      c.connector_id === 0 ? "0 (station)" : String(c.connector_id), c.status || "—", c.transaction_id == null ? "—" : `#${c.transaction_id}`,
      c.power_w == null ? "—" : kw(c.power_w), c.offered_a == null ? "—" : `${c.offered_a.toFixed(1)} A`,
      c.energy_wh == null ? "—" : `${(c.energy_wh / 1000).toFixed(2)} kWh`, unknown ? "unknown" : kw(c.limit_w),
    ]), "What each connector reported"));
    const select = document.querySelector("#form-energy select[name=transaction]");
    const current = select.value;
    const running = rows.filter((c) => c.transaction_id != null);
    const key = running.map((c) => c.transaction_id).join(",");
    if (select.dataset.key !== key) {
      select.dataset.key = key;
      select.replaceChildren(h("option", { value: "", text: "every new session" }),
        ...running.map((c) => h("option", { value: c.transaction_id, text: `transaction #${c.transaction_id} (connector ${c.connector_id})` })));
      select.value = running.some((c) => String(c.transaction_id) === current) ? current : "";
    }
  }

  renderDesired() {
    const rows = this.detail.desired_profiles || [];
    const box = document.getElementById("desired");
    if (!rows.length) return replaceChildren(box, h("p", { class: "muted", text: "No profile: the policies leave this station unlimited." }));
    replaceChildren(box, table(["Profile", "Connector", "Purpose", "Kind", "Stack", "From", "Where"], rows.map((p) => [
      `#${p.profile_id}`, String(p.connector_id), p.profile.chargingProfilePurpose, p.profile.chargingProfileKind,
      String(p.profile.stackLevel), p.template ? `${p.source} (template ${p.template})` : p.source,
      fromGit(p) ? h("code", { text: p.location }) : h("span", { class: "override-mark", text: "override" }),
    ]), "Desired profiles"));
  }

  renderLedger() {
    const rows = this.detail.ledger || [];
    const box = document.getElementById("ledger");
    if (!rows.length) return replaceChildren(box, h("p", { class: "muted", text: "Nothing installed by the reconciler." }));
    replaceChildren(box, table(["Profile", "Connector", "Purpose", "Stack", "Revision", "Confirmed"], rows.map((e) => [
      `#${e.profile_id}`, String(e.connector_id), e.purpose, String(e.stack_level), revision(e.revision), e.confirmed ? "yes" : "unconfirmed",
    ]), "Ledger"));
  }

  renderCapabilities() {
    const caps = this.detail.capabilities || {};
    const items = Object.entries(caps).filter(([k]) => k !== "read_from_charger")
      .map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : String(v)]);
    if (caps.read_from_charger) items.push(["Read from the charger", Object.entries(caps.read_from_charger).map(([k, v]) => `${k}=${v}`).join(", ")]);
    replaceChildren(document.getElementById("capabilities"), items.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })]));
  }

  renderEvents() {
    const events = [...(this.detail.events || [])].reverse();
    const box = document.getElementById("events");
    if (!events.length) return replaceChildren(box, h("li", { class: "muted", text: "No event yet." }));
    replaceChildren(box, events.map((e) => h("li", { "data-kind": e.kind },
      h("time", { datetime: e.at, title: localTime(e.at), text: ago(e.at) }), h("span", { class: "kind", text: e.kind }),
      h("span", { text: e.message }))));
  }

  renderCharts() {
    const data = this.schedules;
    // a live refresh keeps what the operator is looking at: the hovered or focused instant, the focus
    const old = [...this.chartsBox.querySelectorAll(".chart")];
    const focused = old.find((f) => f.contains(document.activeElement));
    const cursors = new Map(old.filter((f) => f.cursorAt && f.cursorAt() !== null).map((f) => [f.dataset.connector, f.cursorAt()]));
    const figures = data.connectors.map((c) => renderChart(c, { duration: data.duration, start: data.start }));
    this.chartsBox.replaceChildren(...figures);
    this.chartsBox.dataset.updated = String(Date.now());
    for (const figure of figures) {
      if (focused && figure.dataset.connector === focused.dataset.connector) figure.querySelector("svg").focus();
      if (cursors.has(figure.dataset.connector)) figure.showAt(cursors.get(figure.dataset.connector));
    }
  }
}
