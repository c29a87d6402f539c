// The dashboard's entry point: sign-in, routing (#/ fleet, #/station/ID), and live updates.
// Live: the server-sent events of GET /events/stream (read with fetch, so the credentials go along)
// trigger refreshes of what is on screen; a 5 s poll backs them up (power drawn changes without an
// event). Refreshes patch the page in place, never rebuild it: scroll, selection and dialogs stay.
import { authorization, get, onUnauthorized, signOut, streamEvents } from "./api.js";
import { selectionChanged, wireDemoControls, wireFleetActions, wireStationActions } from "./actions.js";
import { login } from "./dialogs.js";
import { FleetTable } from "./fleet.js";
import { clock } from "./format.js";
import { failed } from "./notices.js";
import { openProfiles } from "./profiles.js";
import { StationView } from "./station.js";

const POLL_MS = 5000;
const CHART_MS = 30000;
const state = { config: { open_reads: false, demo: false }, view: null, lastError: null, updates: 0, chartsAt: 0 };

function reportError(title, error) {
  const key = `${title}|${error && error.detail}`;
  if (state.lastError === key) return; // one toast per distinct failure, not one per poll
  state.lastError = key;
  failed(title, error);
}

function clearError() {
  state.lastError = null;
}

function setLive(mode) {
  const live = document.getElementById("live");
  live.dataset.state = mode;
  const when = state.updatedAt ? ` · updated ${clock(state.updatedAt, true)}` : "";
  live.textContent = `${mode === "live" ? "live" : mode === "polling" ? `polling every ${POLL_MS / 1000} s` : "connecting…"}${when}`;
}

function markUpdated() {
  state.updates += 1;
  state.updatedAt = new Date();
  const live = document.getElementById("live");
  live.dataset.updates = String(state.updates);
  setLive(live.dataset.state || "connecting");
}

function throttled(work, gap) {
  let running = false;
  let again = false;
  let last = 0;
  let timer = null;
  const run = async () => {
    timer = null;
    if (running) {
      again = true;
      return;
    }
    running = true;
    last = Date.now();
    try {
      await work();
    } finally {
      running = false;
      if (again) {
        again = false;
        kick();
      }
    }
  };
  const kick = (delay = 0) => {
    if (timer) return;
    const spacing = typeof gap === "function" ? gap() : gap;
    timer = setTimeout(run, Math.max(delay, last + spacing - Date.now(), 0));
  };
  return kick;
}

const fleet = new FleetTable({ onSelection: selectionChanged, onFilter: writeHash });
const station = new StationView({ onError: reportError });

// the first GET /stations, sent by boot.js while the page was still loading (null when it failed:
// then the request goes again through api.js, which asks for credentials on a 401)
let early = window.reconcilerFleet || null;

// With a large fleet GET /stations costs the daemon real work: refreshes are spaced by at least ten
// times what the last one took (5 s or 1 s at least), so an open dashboard never keeps it busy.
let fleetCost = 0;

async function loadFleet() {
  try {
    const started = performance.now();
    const stations = (early && (await early)) || (await get("/stations"));
    fleetCost = early ? fleetCost : performance.now() - started;
    early = null;
    const first = !performance.getEntriesByName("fleet-rendered").length && stations.length > 0;
    if (first) performance.mark("fleet-fetched");
    fleet.update(stations);
    clearError();
    markUpdated();
    if (first) {
      performance.mark("fleet-built");
      // the table is there once the frame that shows it is painted
      requestAnimationFrame(() => setTimeout(() => performance.mark("fleet-rendered"), 0));
    }
  } catch (error) {
    reportError("Fleet", error);
  }
}

async function loadStation() {
  await station.refresh();
  markUpdated();
}

async function loadCharts() {
  state.chartsAt = Date.now();
  await station.refreshCharts();
}

const refreshFleet = throttled(loadFleet, () => Math.max(1000, 5 * fleetCost));
const refreshStation = throttled(loadStation, 300);
const refreshCharts = throttled(loadCharts, 300);

function onEvent(event) {
  if (state.view === "fleet") refreshFleet(150);
  if (state.view === "station" && (event.station_id === station.id || event.station_id === null)) {
    refreshStation(100);
    if (/^(action|profile|override|status|policy|intent)\./.test(event.kind)) refreshCharts(100);
  }
}

async function live() {
  let delay = 1000;
  for (;;) {
    const controller = new AbortController();
    try {
      await streamEvents(onEvent, controller.signal, null, () => {
        delay = 1000;
        setLive("live");
      });
    } catch {
      // the stream could not be opened or broke: the 5 s poll carries on, try the stream again later
    }
    setLive("polling");
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 15000);
  }
}

let polledAt = 0;

function poll() {
  if (document.hidden) return;
  if (state.view === "fleet" && Date.now() - polledAt >= Math.max(POLL_MS, 10 * fleetCost) - 50) {
    polledAt = Date.now();
    refreshFleet();
  }
  if (state.view === "station") {
    refreshStation();
    if (Date.now() - state.chartsAt > CHART_MS) refreshCharts();
  }
}

function readHash() {
  const hash = decodeURIComponent(location.hash.replace(/^#/, "")) || "/";
  const [path, query = ""] = hash.split("?");
  const match = path.match(/^\/station\/(.+)$/);
  return match ? { view: "station", id: match[1] } : { view: "fleet", filters: Object.fromEntries(new URLSearchParams(query)) };
}

function writeHash(filters) {
  if (state.view !== "fleet") return;
  const query = new URLSearchParams(Object.entries(filters).filter(([, v]) => v)).toString();
  history.replaceState(null, "", query ? `#/?${query}` : "#/");
}

async function route() {
  const target = readHash();
  const changed = target.view !== state.view || (target.view === "station" && target.id !== station.id);
  state.view = target.view;
  document.getElementById("fleet-view").hidden = target.view !== "fleet";
  document.getElementById("station-view").hidden = target.view !== "station";
  if (target.view === "fleet") {
    station.close();
    document.title = "reconciler · fleet";
    fleet.setFilters(target.filters);
    if (changed) document.getElementById("fleet-title").focus({ preventScroll: true });
    await loadFleet();
  } else {
    document.title = `reconciler · ${target.id}`;
    if (changed) {
      const title = document.getElementById("station-title");
      title.tabIndex = -1;
      title.focus({ preventScroll: true });
      window.scrollTo(0, 0);
    }
    state.chartsAt = Date.now();
    await station.open(target.id);
    markUpdated();
  }
}

async function afterChange(stationId) {
  if (state.view === "station" && (stationId === null || stationId === station.id)) {
    await Promise.all([loadStation(), loadCharts()]);
  } else {
    await loadFleet();
  }
}

async function init() {
  document.getElementById("fleet-title").tabIndex = -1;
  wireStationActions({ view: station, afterChange });
  wireFleetActions({ fleet, afterChange });
  wireDemoControls({ afterChange });
  document.getElementById("act-profiles").addEventListener("click", () => station.detail && openProfiles(station));
  document.getElementById("sign-out").addEventListener("click", () => {
    signOut();
    location.reload();
  });
  const config = get("/dashboard/config").then((value) => {
    state.config = value;
    document.getElementById("demo-controls").hidden = !value.demo;
    document.getElementById("demo-station").hidden = !value.demo;
  }, (error) => reportError("Dashboard", error));
  onUnauthorized(() => login({ openReads: state.config.open_reads }));
  if (!authorization()) {
    await config; // without credentials: are reads open, or must the operator sign in first?
    if (!state.config.open_reads) await login({ openReads: false });
  }
  document.getElementById("sign-out").hidden = !authorization();
  window.addEventListener("hashchange", route);
  await route();
  document.body.dataset.ready = "true";
  live();
  setInterval(poll, POLL_MS);
}

init();
