// A classic script, run while the page is still being parsed: with credentials already in this tab,
// ask for the fleet while the modules load instead of after (app.js takes the answer).
(function prefetchFleet() {
  const auth = sessionStorage.getItem("reconciler.authorization");
  const hash = location.hash.replace(/^#/, "") || "/";
  if (!auth || !hash.startsWith("/") || hash.startsWith("/station/")) return;
  const headers = { Accept: "application/json", Authorization: auth, "X-Requested-With": "reconciler-dashboard" };
  window.reconcilerFleet = fetch("/stations", { headers })
    .then((response) => (response.ok ? response.json() : null))
    .catch(() => null);
})();
