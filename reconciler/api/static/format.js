// How values read on screen: power, durations, times, revisions. Pure functions, no DOM.

export function kw(watts, digits = 1) {
  if (watts === null || watts === undefined) return "no limit";
  return `${(watts / 1000).toFixed(digits)} kW`;
}

export function duration(seconds) {
  const total = Math.max(0, Math.round(seconds));
  const days = Math.floor(total / 86400);
  const hours = Math.floor((total % 86400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const rest = total % 60;
  const parts = [];
  if (days) parts.push(`${days} d`);
  if (hours) parts.push(`${hours} h`);
  if (minutes) parts.push(`${minutes} min`);
  if (rest || parts.length === 0) parts.push(`${rest} s`);
  return parts.join(" ");
}

export function ago(iso, now = Date.now()) {
  if (!iso) return "never";
  const seconds = Math.round((now - Date.parse(iso)) / 1000);
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

export function until(iso, now = Date.now()) {
  if (!iso) return "never";
  const seconds = Math.round((Date.parse(iso) - now) / 1000);
  return seconds <= 0 ? "now" : `in ${duration(seconds)}`;
}

// Formatters are built once: toLocaleString() builds one per call, which a thousand rows feel.
const DATE_TIME = new Intl.DateTimeFormat([], { dateStyle: "short", timeStyle: "medium" });
const HH_MM = new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
const HH_MM_SS = new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });

export function localTime(iso) {
  if (!iso) return "—";
  return DATE_TIME.format(new Date(iso));
}

export function clock(date, withSeconds = false) {
  return (withSeconds ? HH_MM_SS : HH_MM).format(date);
}

export function revision(value) {
  return value ? value.slice(0, 8) : "—";
}

export function labels(map) {
  return Object.entries(map || {}).map(([k, v]) => `${k}=${v}`);
}
