// Keeps live panels of the consoles current without reloading the page.
(function () {
  "use strict";

  function refresher(panel) {
    var url = panel.getAttribute("data-refresh");
    var pending = false;
    return function refresh() {
      if (pending) { return; }
      pending = true;
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) {
          if (r.status === 401 || r.redirected) { window.location.reload(); return null; }
          return r.ok ? r.text() : null;
        })
        .then(function (html) {
          pending = false;
          if (html === null) { return; }
          // Never pull the table from under someone typing a note.
          var active = document.activeElement;
          var typing = active && panel.contains(active) && active.tagName === "INPUT" && active.value !== "";
          if (!typing) {
            var focusedId = active && panel.contains(active) ? active.closest("tr") && active.closest("tr").getAttribute("data-visit") : null;
            panel.innerHTML = html;
            if (focusedId) {
              var row = panel.querySelector('tr[data-visit="' + focusedId + '"] button');
              if (row) { row.focus(); }
            }
          }
        })
        .catch(function () { pending = false; /* the next round tries again */ });
    };
  }

  var devices = document.getElementById("devices");
  if (devices) {
    setInterval(refresher(devices), 5000);
  }

  var worklist = document.getElementById("worklist");
  if (worklist) {
    var refresh = refresher(worklist);
    var status = document.getElementById("worklist-status");
    // Live: the hub says when something changed; a slow poll covers lost connections.
    if (window.EventSource) {
      var events = new EventSource(worklist.getAttribute("data-events"));
      events.addEventListener("update", refresh);
    }
    setInterval(refresh, 30000);
    // One click on a visit's button posts its form without leaving the page.
    worklist.addEventListener("submit", function (e) {
      var form = e.target;
      if (!form.classList || !form.classList.contains("visit-action")) { return; }
      e.preventDefault();
      var body = new URLSearchParams(new FormData(form, e.submitter));
      fetch(form.action, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: body,
        redirect: "manual"
      }).then(function (r) {
        if (r.type === "opaqueredirect" || r.ok) {
          status.textContent = "";
        } else {
          return r.json().then(function (j) {
            status.textContent = worklist.getAttribute("data-failed") + ": " + (j.error && j.error.message || r.status);
          }, function () {
            status.textContent = worklist.getAttribute("data-failed") + ": " + r.status;
          });
        }
      }).catch(function () {
        status.textContent = worklist.getAttribute("data-failed");
      }).then(function () {
        var active = document.activeElement;
        if (active && active.tagName === "INPUT") { active.blur(); }
        refresh();
      });
    });
  }
}());
