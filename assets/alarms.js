// The nurse console's alarm queue: open alerts live, unanswered ones first
// and highlighted with the time they have waited; answer, dispatch a
// patrol, resolve or cancel; the answer-time shares of the last 30 days.
(function () {
  "use strict";

  var A = window.EtahoivaAlerts;
  var t = A.t, el = A.el;
  var lang = A.config.lang;

  var list = document.getElementById("alerts");
  var none = document.getElementById("no-alerts");
  var summary = document.getElementById("summary");
  var announcer = document.getElementById("announce");
  var actionStatus = document.getElementById("action-status");

  function unanswered(alert) {
    return A.isUnacknowledged(alert) && !alert.answered_at;
  }

  function queueOrder(a, b) {
    var ua = unanswered(a) ? 0 : 1, ub = unanswered(b) ? 0 : 1;
    return ua !== ub ? ua - ub : A.byUrgency(a, b);
  }

  // ---- The list ----------------------------------------------------------

  function button(action, text, client, extra) {
    var attrs = { type: "button", "class": "act secondary", "data-action": action };
    Object.keys(extra || {}).forEach(function (k) { attrs[k] = extra[k]; });
    return el("button", attrs, [text, el("span", { "class": "visually-hidden", text: ": " + client })]);
  }

  function waitedClass(alert, now) {
    if (!unanswered(alert)) { return ""; }
    var waited = now - alert.raised_at;
    return waited >= 180000 ? "late-180" : (waited >= 60000 ? "late-60" : "");
  }

  function card(alert) {
    var id = alert.id;
    var open = alert.status === "raised" || alert.status === "routed" || alert.status === "acknowledged";
    var waiting = unanswered(alert);
    var now = live.now();
    var meta = [
      waiting ? el("strong", { "class": "badge-unanswered", text: t("alarms.unanswered") }) : null,
      waiting ? " " : null,
      el("span", { "class": "status status-" + alert.status, text: A.label("statuses", alert.status) }),
      " · ",
      el("time", {
        datetime: new Date(alert.raised_at).toISOString(),
        "class": "waited " + waitedClass(alert, now),
        "data-waited": alert.raised_at,
        "data-open": waiting ? "true" : "false"
      }, [A.elapsed(now - alert.raised_at)]),
      " (" + A.clock(alert.raised_at) + ")"
    ];
    if (alert.count > 1) { meta.push(" · ", el("strong", { text: t("presses", { n: alert.count }) })); }
    var team = [alert.area_name, alert.team_name].filter(Boolean).join(" · ");
    if (alert.escalated_team_name) { team += " · " + t("escalated", { team: alert.escalated_team_name }); }
    var who = alert.claimed_by ? t("claimed_by", { name: alert.claimed_by_name || alert.claimed_by }) : t("not_claimed");
    var contact = alert.contact ? t("alarms.answered", { contact: A.label("contacts", alert.contact) }) : "";
    var buttons = [];
    if (open && !alert.answered_at) {
      buttons.push(el("div", { "class": "answer-group", role: "group", "aria-label": t("alarms.answer") + ": " + alert.client_name }, [
        el("span", { "class": "group-label", "aria-hidden": "true", text: t("alarms.answer") + ":" })
      ].concat(["reached", "not_reached", "unclear"].map(function (c) {
        return button("answer", A.label("contacts", c), alert.client_name, { "data-contact": c, "class": "act" + (c === "reached" ? "" : " secondary") });
      }))));
    }
    if (open) { buttons.push(button("dispatch", t("alarms.dispatch"), alert.client_name)); }
    buttons.push(button("resolve", t("action.resolve"), alert.client_name));
    buttons.push(button("cancel", t("alarms.cancel"), alert.client_name));
    if (actions.busy.has(id)) {
      buttons.forEach(function (a) {
        Array.prototype.forEach.call(a.tagName === "BUTTON" ? [a] : a.querySelectorAll("button"), function (b) {
          b.setAttribute("aria-disabled", "true");
        });
      });
    }
    return A.card(alert, {
      mark: waiting ? "unanswered" : "",
      meta: meta,
      team: team,
      claimed: el("p", { "class": "claimed" }, [who, contact ? " · " + contact : ""]),
      error: actions.errors.get(id),
      actions: buttons
    });
  }

  function draw() {
    var alerts = Array.from(live.alerts.values()).sort(queueOrder);
    A.drawList(list, alerts, card, function (a) { return actions.signature(a); }, "queue-heading");
    none.hidden = alerts.length > 0;
    var waiting = alerts.filter(unanswered).length;
    summary.textContent = alerts.length ? t("summary", { open: alerts.length, unack: waiting }) : "";
  }

  function onChange(alerts, info) {
    actions.forgetClosed(info);
    draw();
    var words = A.changeWords(info);
    if (words) { A.announce(announcer, words); }
    if ((info.closed || []).length) { loadReport(); }
  }

  function onTick() {
    var now = live.now();
    Array.prototype.forEach.call(list.querySelectorAll("time[data-waited]"), function (node) {
      var since = Number(node.getAttribute("data-waited"));
      node.textContent = A.elapsed(now - since);
      if (node.getAttribute("data-open") === "true") {
        var waited = now - since;
        node.classList.toggle("late-60", waited >= 60000 && waited < 180000);
        node.classList.toggle("late-180", waited >= 180000);
      }
    });
  }

  var live = new A.Live({ onChange: onChange, onState: A.connectionView(list, actionStatus), onTick: onTick });

  // ---- Actions -----------------------------------------------------------

  // A refused answer is shown on its card; the dialogs show their own.
  var actions = new A.Actions({
    live: live,
    status: actionStatus,
    redraw: draw,
    refusal: function (result, body) { return body.action === "answer" ? "card" : "status"; }
  });

  function run(id, body) { return actions.run(id, body); }

  var dialogFor = null;   // {id, opener}

  function openDialog(name, id, opener) {
    var alert = live.alerts.get(id);
    var dialog = document.getElementById(name);
    if (!alert || !dialog) { return; }
    var form = dialog.querySelector("form");
    form.reset();
    var error = form.querySelector(".error");
    error.hidden = true;
    error.textContent = "";
    dialog.querySelector(".dialog-client").textContent = A.label("kinds", alert.kind) + ": " + alert.client_name +
      (alert.client_address ? ", " + alert.client_address : "");
    dialogFor = { id: id, opener: opener };
    if (name === "dispatch") { loadTeams(); }
    dialog.showModal();
    var first = form.querySelector("select, textarea, input");
    if (first) { first.focus(); }
  }

  Array.prototype.forEach.call(document.querySelectorAll("dialog.alarm-dialog"), function (dialog) {
    var form = dialog.querySelector("form");
    dialog.addEventListener("close", function () {
      var opener = dialogFor && dialogFor.opener;
      dialogFor = null;
      if (opener && document.body.contains(opener)) { opener.focus(); }
    });
    dialog.querySelector("[data-close]").addEventListener("click", function () { dialog.close(); });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!dialogFor) { return; }
      var body = { action: form.getAttribute("data-action") };
      Array.prototype.forEach.call(form.elements, function (field) {
        if (!field.name) { return; }
        var value = field.value.trim();
        if (value) { body[field.name] = value; }
      });
      var error = form.querySelector(".error");
      run(dialogFor.id, body).then(function (result) {
        if (!result) { return; }
        if (result.ok) { dialog.close(); return; }
        error.hidden = false;
        error.textContent = result.message;
        var field = result.error && result.error.details && result.error.details[0] && result.error.details[0].field;
        var target = (field && form.elements[field]) || (result.status === 422 ? form.elements.reason : null);
        if (target && target.focus) { target.focus(); }
      });
    });
  });

  list.addEventListener("click", function (event) {
    var btn = event.target.closest("button[data-action]");
    if (!btn || !list.contains(btn) || btn.getAttribute("aria-disabled") === "true") { return; }
    var id = btn.closest("[data-alert]").getAttribute("data-alert");
    var action = btn.getAttribute("data-action");
    if (action === "answer") {
      run(id, { action: "answer", contact: btn.getAttribute("data-contact") });
    } else {
      openDialog(action, id, btn);
    }
  });

  // ---- Patrol teams --------------------------------------------------------

  var teamsLoaded = false;
  function loadTeams() {
    if (teamsLoaded) { return; }
    fetch("/api/v1/teams", { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : []; })
      .then(function (teams) {
        var select = document.getElementById("dispatch-team");
        (teams || []).filter(function (team) { return team.kind === "patrol"; })
          .sort(function (a, b) { return a.name.localeCompare(b.name, lang); })
          .forEach(function (team) {
            select.appendChild(el("option", { value: team.id, text: team.name }));
          });
        teamsLoaded = true;
      }, function () { /* the default team still works */ });
  }

  // ---- Answer times --------------------------------------------------------

  var reportList = document.getElementById("report");
  var reportCounts = document.getElementById("report-counts");

  function percent(share) {
    return (share * 100).toLocaleString(lang, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  }

  function reportLine(secs, share, target) {
    var met = share >= target - 1e-9;
    return el("li", { "class": "report-line " + (met ? "met" : "missed"), "data-within": secs }, [
      el("span", { "class": "mark", "aria-hidden": "true", text: met ? "✓" : "✗" }),
      " ",
      t("alarms.report.within", { secs: secs, share: percent(share), target: percent(target) }),
      " – ",
      el("strong", { text: met ? t("alarms.report.met") : t("alarms.report.missed") })
    ]);
  }

  function loadReport() {
    var to = new Date();
    var from = new Date(to.getTime() - 30 * 86400000);
    var url = A.config.alerts + "/report?from=" + encodeURIComponent(from.toISOString()) +
      "&to=" + encodeURIComponent(to.toISOString());
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
      .then(function (report) {
        reportList.textContent = "";
        if (report.share_within_60s === null || report.share_within_60s === undefined) {
          reportList.appendChild(el("li", { "class": "report-line", text: t("alarms.report.none") }));
          reportCounts.textContent = "";
          return;
        }
        reportList.appendChild(reportLine(60, report.share_within_60s, report.target_60s));
        reportList.appendChild(reportLine(180, report.share_within_180s, report.target_180s));
        reportCounts.textContent = t("alarms.report.counts", { alarms: report.alarms, answered: report.answered });
      })
      .catch(function () {
        reportList.textContent = "";
        reportList.appendChild(el("li", { "class": "report-line error-text", text: t("alarms.report.failed") }));
      });
  }

  draw();
  loadReport();
  setInterval(loadReport, 300000);
  live.start();
}());
