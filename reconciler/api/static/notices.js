// Toasts: the result of every action, with the API's own message. Errors stay until dismissed.
import { h } from "./dom.js";

const OK_MS = 7000;

export function toast(message, { kind = "ok", title = null } = {}) {
  const region = document.getElementById("toasts");
  const close = h("button", { type: "button", "aria-label": "Dismiss notification", text: "×" });
  const node = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status", "data-kind": kind },
    h("p", {}, title ? h("strong", { text: title }) : null, message),
    close,
  );
  close.addEventListener("click", () => node.remove());
  region.append(node);
  while (region.children.length > 5) region.firstElementChild.remove();
  if (kind !== "error") setTimeout(() => node.remove(), OK_MS);
  return node;
}

export function failed(title, error) {
  return toast(error && error.detail ? error.detail : String(error), { kind: "error", title });
}
