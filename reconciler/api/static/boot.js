// A classic script, run while the page is still being parsed: with credentials already in this tab,
// ask for the fleet at once instead of after the modules have loaded (app.js takes the answer).
(function prefetchFleet() {
  const auth = sessionStorage.getItem("reconciler.authorization");
  const hash = location.hash.replace(/^#/, "") || "/";
  if (!auth || !hash.startsWith("/") || hash.startsWith("/station/")) return;
  window.reconcilerFleet = fetch("/stations", { headers: { Accept: "application/json", Authorization: auth, "X-Requested-With": "reconciler-dashboard" } })
    .then((response) => (response.ok ? response.json() : null))
    .catch(() => null);
})();
