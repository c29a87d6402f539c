// The fleet table: one row per declared station (GET /stations), filtered by site, label, condition and
// id. Live updates patch rows and cells in place, so scrolling, focus, the selection and open dialogs
// stay as they are; only cells whose content changed are rebuilt.
import { badge, h } from "./dom.js";
import { ago, kw, labels, localTime, revision } from "./format.js";

const CONDITIONS = ["Synced", "OutOfSync", "Progressing", "Degraded", "Offline", "Suspended"];

function powerCell(station) {
  const limit = station.limit ? station.limit.value_w : null;
  const power = station.power_w;
  const text = `${power === null || power === undefined ? "—" : (power / 1000).toFixed(1)} / ${kw(limit)}`;
  const share = power && limit ? Math.min(1, power / limit) : 0;
  return [`${text}|${Math.round(share * 100)}`, () => {
    const fill = h("span");
    fill.style.width = `${Math.round(share * 100)}%`;
    return h("span", { class: "power", title: "power drawn (MeterValues) / limit in force" },
      h("span", { class: `power-bar${share > 0.95 ? " high" : ""}`, "aria-hidden": "true" }, fill), text);
  }];
}

const CELLS = [
  (st) => [st.id, () => h("a", { href: `#/station/${encodeURIComponent(st.id)}`, class: "station-link", text: st.id })],
  (st) => [String(st.connected), () => (st.connected
    ? h("span", { class: "conn-yes", text: "● yes" })
    : h("span", { class: "conn-no", text: "○ no" }))],
  (st) => [`${st.condition}|${st.reason}`, () => h("span", {}, badge(st.condition, st.reason),
    st.reason ? h("span", { class: "visually-hidden", text: `: ${st.reason}` }) : null)],
  (st) => {
    const control = st.control || { text: st.control_source, kind: "hardware", evidence: "" };
    return [`${control.text}|${control.evidence}`, () => h("span", {
      class: `control-badge ${control.kind}`, title: control.evidence || control.text, "data-kind": control.kind, text: control.text,
    })];
  },
  powerCell,
  (st) => {
    const text = ago(st.last_reconcile);
    return [text, () => h("span", { title: st.last_reconcile ? localTime(st.last_reconcile) : "not reconciled yet", text })];
  },
  (st) => [st.revision || "", () => h("code", { title: st.revision || "not a git repository", text: revision(st.revision) })],
  (st) => {
    const ids = st.overrides || [];
    return [ids.join(","), () => (ids.length
      ? h("span", { class: "override-mark", title: `active override(s) ${ids.map((i) => `#${i}`).join(", ")}`, text: `⚑ ${ids.length}` })
      : h("span", { class: "muted", text: "—" }))];
  },
  (st) => [st.site || "", () => h("span", { text: st.site || "—" })],
];

export class FleetTable {
  constructor({ onSelection, onFilter }) {
    this.body = document.getElementById("fleet-body");
    this.empty = document.getElementById("fleet-empty");
    this.rows = new Map();
    this.stations = [];
    this.selected = new Set();
    this.filters = { q: "", site: "", label: "", condition: "" };
    this.onSelection = onSelection;
    this.onFilter = onFilter;
    this.form = document.getElementById("filters");
    this.form.addEventListener("input", () => this.readFilters());
    this.form.addEventListener("reset", () => setTimeout(() => this.readFilters(), 0));
    this.form.addEventListener("submit", (event) => event.preventDefault());
    this.selectAll = document.getElementById("select-all");
    this.selectAll.addEventListener("change", () => this.selectVisible(this.selectAll.checked));
    this.body.addEventListener("change", (event) => {
      const box = event.target.closest("input[type=checkbox]");
      if (!box) return;
      const id = box.closest("tr").dataset.id;
      if (box.checked) this.selected.add(id);
      else this.selected.delete(id);
      this.paintSelection(id);
      this.onSelection(this.selected);
    });
    this.body.addEventListener("click", (event) => {
      if (event.target.closest("a, input, button")) return; // a click elsewhere in a row toggles its selection
      const tr = event.target.closest("tr[data-id]");
      if (!tr) return;
      const row = this.rows.get(tr.dataset.id);
      row.box.checked = !row.box.checked;
      row.box.dispatchEvent(new Event("change", { bubbles: true }));
    });
    document.getElementById("condition-chips").addEventListener("click", (event) => {
      const chip = event.target.closest("button[data-condition]");
      if (!chip) return;
      const value = chip.dataset.condition;
      this.setFilters({ ...this.filters, condition: this.filters.condition === value ? "" : value });
      this.onFilter(this.filters);
    });
  }

  readFilters() {
    const data = new FormData(this.form);
    this.filters = { q: (data.get("q") || "").trim(), site: data.get("site") || "", label: data.get("label") || "", condition: data.get("condition") || "" };
    this.applyFilters();
    this.onFilter(this.filters);
  }

  setFilters(filters) {
    this.filters = { q: "", site: "", label: "", condition: "", ...filters };
    const els = this.form.elements;
    els.q.value = this.filters.q;
    this.ensureOption(els.site, this.filters.site);
    els.site.value = this.filters.site;
    this.ensureOption(els.label, this.filters.label);
    els.label.value = this.filters.label;
    els.condition.value = this.filters.condition;
    this.applyFilters();
  }

  ensureOption(select, value) {
    if (value && ![...select.options].some((o) => o.value === value)) select.append(h("option", { value, text: value }));
  }

  matches(station) {
    const f = this.filters;
    if (f.q && !station.id.toLowerCase().includes(f.q.toLowerCase())) return false;
    if (f.site && station.site !== f.site) return false;
    if (f.label && !labels(station.labels).includes(f.label)) return false;
    if (f.condition && (station.condition || "Unknown") !== f.condition) return false;
    return true;
  }

  update(stations) {
    this.stations = stations;
    const seen = new Set();
    let cursor = this.body.firstElementChild;
    for (const station of stations) {
      seen.add(station.id);
      let row = this.rows.get(station.id);
      if (!row) {
        row = this.createRow(station);
        this.rows.set(station.id, row);
      }
      this.patchRow(row, station);
      if (row.tr !== cursor) this.body.insertBefore(row.tr, cursor);
      else cursor = cursor.nextElementSibling;
    }
    for (const [id, row] of this.rows) {
      if (!seen.has(id)) {
        row.tr.remove();
        this.rows.delete(id);
        this.selected.delete(id);
      }
    }
    this.refreshOptions(stations);
    this.applyFilters();
    this.renderChips(stations);
    this.renderTotals(stations);
  }

  createRow(station) {
    const box = h("input", { type: "checkbox", "aria-label": `Select ${station.id}` });
    const tr = h("tr", { "data-id": station.id }, h("td", { class: "col-select" }, box));
    const cells = CELLS.map(() => {
      const td = h("td");
      tr.append(td);
      return { td, key: null };
    });
    cells[4].td.className = "num";
    return { tr, box, cells, station };
  }

  patchRow(row, station) {
    row.station = station;
    CELLS.forEach((make, i) => {
      const [key, build] = make(station);
      const cell = row.cells[i];
      if (cell.key !== key) {
        cell.key = key;
        cell.td.replaceChildren(build());
      }
    });
    row.tr.dataset.condition = station.condition || "Unknown";
    row.tr.classList.toggle("has-override", (station.overrides || []).length > 0);
    row.box.checked = this.selected.has(station.id);
    row.tr.classList.toggle("selected", row.box.checked);
  }

  paintSelection(id) {
    const row = this.rows.get(id);
    if (row) row.tr.classList.toggle("selected", this.selected.has(id));
  }

  selectVisible(on) {
    for (const [id, row] of this.rows) {
      if (row.tr.hidden) continue;
      if (on) this.selected.add(id);
      else this.selected.delete(id);
      row.box.checked = on;
      this.paintSelection(id);
    }
    this.onSelection(this.selected);
  }

  clearSelection() {
    this.selected.clear();
    for (const row of this.rows.values()) {
      row.box.checked = false;
      row.tr.classList.remove("selected");
    }
    this.selectAll.checked = false;
    this.onSelection(this.selected);
  }

  applyFilters() {
    let shown = 0;
    for (const row of this.rows.values()) {
      const visible = this.matches(row.station);
      if (row.tr.hidden === visible) row.tr.hidden = !visible;
      if (visible) shown += 1;
    }
    this.empty.hidden = shown > 0 || this.rows.size === 0;
    this.shown = shown;
    this.renderTotals(this.stations);
  }

  refreshOptions(stations) {
    const sites = [...new Set(stations.map((st) => st.site).filter(Boolean))].sort();
    const pairs = [...new Set(stations.flatMap((st) => labels(st.labels)))].sort();
    this.fillSelect(this.form.elements.site, sites, "all sites", this.filters.site);
    this.fillSelect(this.form.elements.label, pairs, "all labels", this.filters.label);
  }

  fillSelect(select, values, all, current) {
    const wanted = [...new Set([...values, ...(current ? [current] : [])])];
    const have = [...select.options].slice(1).map((o) => o.value);
    if (have.join("\n") === wanted.join("\n")) return;
    select.replaceChildren(h("option", { value: "", text: all }), ...wanted.map((v) => h("option", { value: v, text: v })));
    select.value = current;
  }

  renderChips(stations) {
    const counts = Object.fromEntries(CONDITIONS.map((c) => [c, 0]));
    for (const st of stations) counts[st.condition || "Offline"] = (counts[st.condition || "Offline"] || 0) + 1;
    const chips = document.getElementById("condition-chips");
    const key = JSON.stringify([counts, this.filters.condition]);
    if (chips.dataset.key === key) return;
    chips.dataset.key = key;
    chips.replaceChildren(...CONDITIONS.filter((c) => counts[c] > 0).map((c) => h("button", {
      type: "button", class: `badge ${c}`, "data-condition": c, "aria-pressed": String(this.filters.condition === c),
      title: `show only ${c} stations`, text: `${c} ${counts[c]}`,
    })));
  }

  renderTotals(stations) {
    const connected = stations.filter((st) => st.connected).length;
    const drawn = stations.reduce((sum, st) => sum + (st.power_w || 0), 0);
    const limit = stations.reduce((sum, st) => sum + (st.limit ? st.limit.value_w || 0 : 0), 0);
    const shown = this.shown ?? stations.length;
    const filtered = shown !== stations.length ? `showing ${shown} of ` : "";
    document.getElementById("fleet-totals").textContent =
      `${filtered}${stations.length} stations · ${connected} connected · ${kw(drawn)} drawn of ${kw(limit)} allowed`;
  }
}
