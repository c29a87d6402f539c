// Modal dialogs (native <dialog>: focus stays inside, Escape cancels): confirmations and sign-in.
import { ApiError, basic, bearer, request, signIn } from "./api.js";
import { append, h } from "./dom.js";

export function confirm({ title, message, confirmLabel = "Confirm", danger = true }) {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-title").textContent = title;
  const body = document.getElementById("confirm-message");
  body.replaceChildren();
  append(body, (Array.isArray(message) ? message : [message]).map((line) => (line instanceof Node ? line : h("p", { text: line }))));
  const ok = document.getElementById("confirm-ok");
  ok.textContent = confirmLabel;
  ok.className = danger ? "danger" : "primary";
  dialog.returnValue = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    dialog.showModal();
    ok.focus();
  });
}

// Ask for the API credentials; resolve true once a read with them succeeds (or reads are open).
export function login({ openReads }) {
  const dialog = document.getElementById("login-dialog");
  const form = document.getElementById("login-form");
  const error = document.getElementById("login-error");
  const method = () => form.elements.method.value;
  const toggle = () => {
    for (const node of form.querySelectorAll(".basic-only")) node.hidden = method() !== "basic";
    for (const node of form.querySelectorAll(".bearer-only")) node.hidden = method() !== "bearer";
  };
  toggle();
  error.textContent = "";
  return new Promise((resolve) => {
    const changed = () => toggle();
    const submit = async (event) => {
      event.preventDefault();
      const header = method() === "basic" ? basic(form.elements.user.value, form.elements.password.value) : bearer(form.elements.token.value);
      signIn(header);
      if (!openReads) {
        try {
          await request("GET", "/events", { query: { limit: 1 }, retry: false });
        } catch (failure) {
          error.textContent = failure instanceof ApiError && failure.status === 401
            ? "The API refused these credentials (401). Check the user and password or token."
            : (failure.detail || String(failure));
          return;
        }
      }
      finish(true);
    };
    const cancel = (event) => {
      event.preventDefault(); // closed reads: without credentials there is nothing to show, keep asking
      if (openReads) finish(false);
    };
    const finish = (value) => {
      form.removeEventListener("submit", submit);
      form.removeEventListener("change", changed);
      dialog.removeEventListener("cancel", cancel);
      dialog.close();
      resolve(value);
    };
    form.addEventListener("submit", submit);
    form.addEventListener("change", changed);
    dialog.addEventListener("cancel", cancel);
    dialog.showModal();
    (method() === "basic" ? form.elements.password : form.elements.token).focus();
  });
}
