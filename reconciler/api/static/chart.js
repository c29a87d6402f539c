// Step charts of one connector's composite schedule, drawn as SVG: what git (plus overrides) expects,
// what the charger reports, and the drift between them (as `plan` judges it, from the API). Hover, or
// focus the chart and use the arrow keys, to see the value at an instant and the profile that governs it.
import { h, s } from "./dom.js";
import { clock, duration as span, kw } from "./format.js";

const W = 640;
const H = 230;
const M = { left: 52, right: 14, top: 14, bottom: 30 };
const PLOT_W = W - M.left - M.right;
const PLOT_H = H - M.top - M.bottom;

function niceStep(max) {
  const raw = max / 4;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((f) => f * power).find((step) => step >= raw) || raw;
}

function timeStep(duration) {
  if (duration <= 3600) return 600;
  if (duration <= 6 * 3600) return 3600;
  if (duration <= 86400) return 3 * 3600;
  return 86400;
}

function levels(segments) {
  const seen = [];
  for (const segment of segments) {
    const label = segment.limit_w === null ? "none" : (segment.limit_w / 1000).toFixed(1);
    if (!seen.includes(label)) seen.push(label);
  }
  return seen.join(",");
}

function at(segments, t) {
  return (segments || []).find((segment) => segment.start_s <= t && t < segment.end_s) || null;
}

export function valueAt(segments, t) {
  const found = at(segments, t);
  return found ? found.limit_w : undefined;
}

function governingAt(governing, t) {
  let found = null;
  for (const item of governing || []) if (item.start_s <= t) found = item;
  return found;
}

export function renderChart(data, { duration, start }) {
  const begin = Date.parse(start);
  const hardware = data.hardware_w;
  const values = [hardware];
  for (const list of [data.expected, data.observed || []]) for (const segment of list) if (segment.limit_w !== null) values.push(segment.limit_w);
  const yMax = Math.max(...values, 1) * 1.1;
  const x = (t) => M.left + (Math.min(Math.max(t, 0), duration) / duration) * PLOT_W;
  const y = (watts) => M.top + PLOT_H - ((watts === null ? hardware : watts) / yMax) * PLOT_H;

  const path = (segments) => {
    let d = "";
    let last = null;
    for (const segment of segments) {
      const x0 = x(segment.start_s).toFixed(1);
      const x1 = x(segment.end_s).toFixed(1);
      const y0 = y(segment.limit_w).toFixed(1);
      d += last !== null && last === segment.start_s ? ` V${y0} H${x1}` : ` M${x0} ${y0} H${x1}`;
      last = segment.end_s;
    }
    return d.trim();
  };

  const grid = s("g", { class: "axis" });
  const step = niceStep(yMax);
  for (let v = 0; v <= yMax; v += step) {
    grid.append(s("line", { class: "gridline", x1: M.left, x2: W - M.right, y1: y(v), y2: y(v) }));
    grid.append(s("text", { x: M.left - 6, y: y(v) + 4, "text-anchor": "end", text: `${(v / 1000).toFixed(v % 1000 ? 1 : 0)} kW` }));
  }
  const every = timeStep(duration);
  const local = begin / 1000 - new Date(begin).getTimezoneOffset() * 60; // ticks on round local times
  for (let t = Math.ceil(local / every) * every - local; t <= duration; t += every) {
    const label = duration > 86400
      ? new Date(begin + t * 1000).toLocaleDateString([], { weekday: "short", day: "numeric" })
      : clock(new Date(begin + t * 1000));
    grid.append(s("line", { class: "gridline", x1: x(t), x2: x(t), y1: M.top, y2: M.top + PLOT_H }));
    if (t > duration * 0.04 && t < duration * 0.97) grid.append(s("text", { x: x(t), y: H - 10, "text-anchor": "middle", text: label }));
  }
  grid.append(s("line", { class: "hardware", x1: M.left, x2: W - M.right, y1: y(hardware), y2: y(hardware) }));
  grid.append(s("text", { class: "nolimit", x: W - M.right, y: y(hardware) - 4, "text-anchor": "end", text: "hardware max (no limit)" }));

  const bands = s("g", { class: "drift" });
  const mismatches = data.drift ? data.drift.mismatches : [];
  for (const m of mismatches) {
    const from = clock(new Date(begin + m.start_s * 1000));
    const to = clock(new Date(begin + m.end_s * 1000));
    bands.append(s("rect", {
      class: "drift-band", x: x(m.start_s), y: M.top, width: Math.max(2, x(m.end_s) - x(m.start_s)), height: PLOT_H,
      "data-drift": m.drift,
    }, s("title", { text: `${m.drift}: ${from}–${to} expected ${kw(m.expected_w)}, reported ${kw(m.observed_w)}` })));
  }

  const expected = s("path", { class: "expected", d: path(data.expected), "data-levels-kw": levels(data.expected) });
  const observed = data.observed
    ? s("path", { class: "observed", d: path(data.observed), "data-levels-kw": levels(data.observed) })
    : null;
  const cursor = s("line", { class: "cursor", x1: 0, x2: 0, y1: M.top, y2: M.top + PLOT_H, visibility: "hidden" });

  const nowExpected = valueAt(data.expected, 0);
  const nowObserved = data.observed ? valueAt(data.observed, 0) : undefined;
  const inSync = data.drift ? data.drift.in_sync : null;
  const name = data.connector_id === 0 ? "Station total (connector 0)" : `Connector ${data.connector_id}`;
  const summary = data.observed_error
    ? `reported: unavailable (${data.observed_error})`
    : inSync ? "in sync" : data.drift ? data.drift.summary : "";
  const label = `${name}: now expected ${kw(nowExpected)}, reported ${nowObserved === undefined ? "unknown" : kw(nowObserved)}; ${summary}`;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", tabindex: 0, "aria-label": label }, grid, bands, observed, expected, cursor);

  const tip = h("div", { class: "tooltip", hidden: true, role: "status" });
  const figure = h("figure", {
    class: "chart", "data-connector": data.connector_id, "data-in-sync": inSync === null ? "unknown" : String(inSync),
  },
  h("h3", {}, h("span", { text: name }),
    h("span", { class: `drift-summary${inSync === false ? " bad" : ""}`, text: summary })),
  h("p", { class: "now muted", text: `now: expected ${kw(nowExpected)} · reported ${nowObserved === undefined ? "—" : kw(nowObserved)}` }),
  svg, tip);

  let cursorT = null;
  const show = (t) => {
    cursorT = Math.min(Math.max(t, 0), duration - 1);
    const px = x(cursorT);
    cursor.setAttribute("x1", px);
    cursor.setAttribute("x2", px);
    cursor.setAttribute("visibility", "visible");
    const when = new Date(begin + cursorT * 1000);
    const rule = governingAt(data.governing, cursorT);
    const drift = mismatches.find((m) => m.start_s <= cursorT && cursorT < m.end_s);
    tip.replaceChildren(...[
      h("strong", { text: `${when.toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" })} (+${span(cursorT)})` }),
      h("div", { text: `expected ${kw(valueAt(data.expected, cursorT))} · reported ${data.observed ? kw(valueAt(data.observed, cursorT)) : "—"}` }),
      rule ? h("div", { class: "governing", text: `governed by ${rule.profile || "no profile (charger default)"}` }) : null,
      rule && (rule.source || rule.location) ? h("div", { class: "muted", text: [rule.source, rule.location].filter(Boolean).join(" · ") }) : null,
      rule ? h("div", { class: "muted", text: rule.why }) : null,
      drift ? h("div", { class: "error", text: `drift: ${drift.drift}` }) : null,
    ].filter(Boolean));
    tip.hidden = false;
    const box = svg.getBoundingClientRect();
    const scale = box.width / W;
    tip.style.left = `${Math.min(px * scale + 12, Math.max(0, box.width - 300))}px`;
    tip.style.top = `${M.top * scale + 40}px`;
  };
  const hide = () => {
    cursorT = null;
    tip.hidden = true;
    cursor.setAttribute("visibility", "hidden");
  };
  svg.addEventListener("pointermove", (event) => {
    const box = svg.getBoundingClientRect();
    const px = ((event.clientX - box.left) / box.width) * W;
    if (px < M.left || px > W - M.right) return hide();
    show(((px - M.left) / PLOT_W) * duration);
  });
  svg.addEventListener("pointerleave", hide);
  svg.addEventListener("blur", hide);
  svg.addEventListener("keydown", (event) => {
    const stepT = duration / 48;
    if (event.key === "ArrowRight") show((cursorT ?? -stepT) + stepT);
    else if (event.key === "ArrowLeft") show((cursorT ?? stepT) - stepT);
    else if (event.key === "Home") show(0);
    else if (event.key === "End") show(duration - 1);
    else if (event.key === "Escape") hide();
    else return;
    event.preventDefault();
  });
  figure.cursorAt = () => cursorT;
  figure.showAt = show;
  figure.hideCursor = hide;
  return figure;
}

// A chart redrawn under a still pointer gets no pointerleave when the pointer goes: any pointer move
// outside a chart hides the cursors of charts that are not focused.
document.addEventListener("pointermove", (event) => {
  for (const figure of document.querySelectorAll(".chart")) {
    if (figure.hideCursor && !figure.contains(event.target) && !figure.contains(document.activeElement)) figure.hideCursor();
  }
});

// The composite as bars (the profile viewer): one bar per period, height = limit.
export function renderBars(segments, { duration, start, hardware }) {
  const begin = Date.parse(start);
  const width = 640;
  const height = 120;
  const top = 16;
  const plot = height - top - 18;
  const max = Math.max(hardware, ...segments.map((seg) => seg.limit_w ?? 0), 1);
  const svg = s("svg", { class: "bars", viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `composite: ${segments.map((seg) => kw(seg.limit_w)).join(", then ")}` });
  for (const seg of segments) {
    const x0 = (seg.start_s / duration) * width;
    const x1 = (Math.min(seg.end_s, duration) / duration) * width;
    const value = seg.limit_w === null ? hardware : seg.limit_w;
    const barH = (value / max) * plot;
    svg.append(s("rect", { class: `bar${seg.limit_w === null ? " nolimit" : ""}`, x: x0 + 0.5, y: top + plot - barH,
      width: Math.max(1, x1 - x0 - 1), height: barH },
    s("title", { text: `${clock(new Date(begin + seg.start_s * 1000))}: ${kw(seg.limit_w)}` })));
    if (x1 - x0 > 46) svg.append(s("text", { x: x0 + 3, y: top + plot - barH - 3, text: kw(seg.limit_w) }));
  }
  svg.append(s("text", { x: 0, y: height - 4, text: clock(new Date(begin)) }));
  svg.append(s("text", { x: width, y: height - 4, "text-anchor": "end", text: `+${span(duration)}` }));
  return svg;
}
