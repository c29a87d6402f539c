// The fleet table: one row per declared station (GET /stations), filtered by site, label, condition and
// id. Live updates patch rows and cells in place, so scrolling, focus, the selection and open dialogs
// stay as they are; only cells whose content changed are rebuilt.
import { h } from "./dom.js";
import { ago, kw, labels, localTime, revision } from "./format.js";

const CONDITIONS = ["Synced", "OutOfSync", "Progressing", "Degraded", "Offline", "Suspended"];
const FIRST_ROWS = 60; // more than a laptop screen shows
const CHUNK_ROWS = 120;

// Rows are written as HTML (parsed natively: a thousand rows in one go), every value escaped.
const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const esc = (value) => String(value ?? "").replace(/[&<>"']/g, (c) => ESCAPES[c]);

// The limit in force is what the charger read back; "unknown" when nothing was (offline, suspended).
function power(st) {
  const known = st.limit && st.limit.source !== "unknown";
  const limit = known ? st.limit.value_w : null;
  const drawn = st.power_w;
  const text = `${drawn === null || drawn === undefined ? "—" : (drawn / 1000).toFixed(1)} / ${known ? kw(limit) : "unknown"}`;
  const share = drawn && limit ? Math.min(1, drawn / limit) : 0;
  const step = Math.round(share * 20) * 5; // the bar's width, in 5 % steps (a class: no inline styles)
  const title = known ? "power drawn (MeterValues) / limit in force (read back from the charger)"
    : "power drawn (MeterValues) / limit in force: nothing read back from the charger";
  return `<span class="power" title="${esc(title)}"><span class="power-bar${share > 0.95 ? " high" : ""}" `
    + `aria-hidden="true"><span class="w${step}"></span></span>${esc(text)}</span>`;
}

function control(st) {
  const source = st.control || { text: st.control_source, kind: "hardware", evidence: "" };
  return `<span class="control-badge ${esc(source.kind)}" data-kind="${esc(source.kind)}" title="${esc(source.evidence || source.text)}">`
    + `${esc(source.text)}</span>`;
}

function condition(st) {
  const name = st.condition || "Unknown";
  const reason = st.reason ? `<span class="visually-hidden">: ${esc(st.reason)}</span>` : "";
  return `<span class="badge ${esc(name)}" data-condition="${esc(name)}" title="${esc(st.reason || name)}">${esc(name)}</span>${reason}`;
}

function overrides(st) {
  const ids = st.overrides || [];
  if (!ids.length) return '<span class="muted">—</span>';
  return `<span class="override-mark" title="active override(s) ${esc(ids.map((i) => `#${i}`).join(", "))}">⚑ ${ids.length}</span>`;
}

const CELLS = [
  (st) => `<a href="#/station/${esc(encodeURIComponent(st.id))}" class="station-link">${esc(st.id)}</a>`,
  (st) => (st.connected ? '<span class="conn-yes">● yes</span>' : '<span class="conn-no">○ no</span>'),
  condition,
  control,
  power,
  (st) => `<span title="${esc(st.last_reconcile ? localTime(st.last_reconcile) : "not reconciled yet")}">${esc(ago(st.last_reconcile))}</span>`,
  (st) => `<code title="${esc(st.revision || "not a git repository")}">${esc(revision(st.revision))}</code>`,
  overrides,
  (st) => esc(st.site || "—"),
];
const CLASSES = ["", "", "", "", "num", "", "", "", ""];

function rowHtml(st) {
  const cells = CELLS.map((cell, i) => `<span role="cell"${CLASSES[i] ? ` class="${CLASSES[i]}"` : ""}>${cell(st)}</span>`).join("");
  return `<div class="frow" role="row" data-id="${esc(st.id)}"><span role="cell"><input type="checkbox" `
    + `aria-label="Select ${esc(st.id)}"></span>${cells}</div>`;
}

export class FleetTable {
  constructor({ onSelection, onFilter }) {
    this.body = document.getElementById("fleet-body");
    this.empty = document.getElementById("fleet-empty");
    this.rows = new Map();
    this.stations = [];
    this.token = 0;
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
      const id = box.closest(".frow").dataset.id;
      if (box.checked) this.selected.add(id);
      else this.selected.delete(id);
      this.paintSelection(id);
      this.onSelection(this.selected);
    });
    this.body.addEventListener("click", (event) => {
      if (event.target.closest("a, input, button")) return; // a click elsewhere in a row toggles its selection
      const node = event.target.closest(".frow[data-id]");
      if (!node) return;
      const row = this.rows.get(node.dataset.id);
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
    const token = ++this.token;
    this.refreshOptions(stations);
    this.renderChips(stations);
    if (this.rows.size === 0 && stations.length > FIRST_ROWS) {
      // a first, long table: the rows on screen now, the rest in small tasks, so the page answers at once
      this.append(stations.slice(0, FIRST_ROWS));
      this.finish(stations, false);
      let next = FIRST_ROWS;
      const more = () => {
        if (token !== this.token) return; // a newer update places every row itself
        this.append(stations.slice(next, next + CHUNK_ROWS));
        next += CHUNK_ROWS;
        if (next < stations.length) setTimeout(more, 0);
        else this.finish(stations, true);
      };
      requestAnimationFrame(() => setTimeout(more, 0)); // the first rows are painted before the rest is built
      return;
    }
    this.place(stations);
    this.finish(stations, true);
  }

  append(stations) {
    const template = document.createElement("template");
    template.innerHTML = stations.map(rowHtml).join("");
    stations.forEach((station, i) => {
      const row = this.adopt(template.content.children[i], station);
      row.node.hidden = !this.matches(station);
    });
    this.body.append(template.content);
  }

  place(stations) {
    let cursor = this.body.firstElementChild;
    for (const station of stations) {
      let row = this.rows.get(station.id);
      if (!row) row = this.createRow(station);
      else this.patchRow(row, station);
      if (row.node !== cursor) this.body.insertBefore(row.node, cursor);
      else cursor = cursor.nextElementSibling;
    }
  }

  finish(stations, complete) {
    if (complete) {
      const seen = new Set(stations.map((st) => st.id));
      for (const [id, row] of this.rows) {
        if (!seen.has(id)) {
          row.node.remove();
          this.rows.delete(id);
          this.selected.delete(id);
        }
      }
      this.body.dataset.rows = String(this.rows.size);
      if (!performance.getEntriesByName("fleet-complete").length && this.rows.size) performance.mark("fleet-complete");
    }
    this.applyFilters();
  }

  createRow(station) {
    const template = document.createElement("template");
    template.innerHTML = rowHtml(station);
    return this.adopt(template.content.firstElementChild, station);
  }

  adopt(node, station) {
    const cells = [...node.children].slice(1).map((el, i) => ({ el, html: CELLS[i](station) }));
    const row = { node, box: node.firstElementChild.firstElementChild, cells, station };
    this.rows.set(station.id, row);
    this.mark(row, station);
    return row;
  }

  patchRow(row, station) {
    row.station = station;
    CELLS.forEach((cell, i) => {
      const html = cell(station);
      const target = row.cells[i];
      if (target.html !== html) {
        target.html = html;
        target.el.innerHTML = html;
      }
    });
    this.mark(row, station);
  }

  mark(row, station) {
    row.node.dataset.condition = station.condition || "Unknown";
    row.node.classList.toggle("has-override", (station.overrides || []).length > 0);
    row.box.checked = this.selected.has(station.id);
    row.node.classList.toggle("selected", row.box.checked);
  }

  paintSelection(id) {
    const row = this.rows.get(id);
    if (row) row.node.classList.toggle("selected", this.selected.has(id));
  }

  selectVisible(on) {
    for (const [id, row] of this.rows) {
      if (row.node.hidden) continue;
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
      row.node.classList.remove("selected");
    }
    this.selectAll.checked = false;
    this.onSelection(this.selected);
  }

  applyFilters() {
    for (const row of this.rows.values()) {
      const visible = this.matches(row.station);
      if (row.node.hidden === visible) row.node.hidden = !visible;
    }
    this.shown = this.stations.filter((station) => this.matches(station)).length;
    this.empty.hidden = this.shown > 0 || this.stations.length === 0;
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
