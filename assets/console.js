// Keeps live panels of the consoles current without reloading the page.
(function () {
  "use strict";
  var panel = document.getElementById("devices");
  if (!panel) { return; }
  var url = panel.getAttribute("data-refresh");
  function refresh() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.status === 401 || r.redirected) { window.location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        if (html === null) { return; }
        var focused = document.activeElement && panel.contains(document.activeElement);
        if (!focused) { panel.innerHTML = html; }
      })
      .catch(function () { /* the next round tries again */ });
  }
  setInterval(refresh, 5000);
}());
