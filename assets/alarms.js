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
  var stale = document.getElementById("stale");
  var conn = document.getElementById("conn");
  var connText = document.getElementById("conn-text");
  var announcer = document.getElementById("announce");
  var actionStatus = document.getElementById("action-status");

  var errors = new Map();
  var busy = new Set();

  function unanswered(alert) {
    return A.isUnacknowledged(alert) && !alert.answered_at;
  }

  function queueOrder(a, b) {
    var ua = unanswered(a) ? 0 : 1, ub = unanswered(b) ? 0 : 1;
    return ua !== ub ? ua - ub : A.byUrgency(a, b);
  }

  function announce(text) {
    announcer.textContent = "";
    setTimeout(function () { announcer.textContent = text; }, 50);
  }

  // ---- The list ----------------------------------------------------------

  function fact(term, value) {
    if (value === null || value === undefined || value === "") { return []; }
    return [el("dt", { text: term }), el("dd", {}, [value])];
  }

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
    var titleId = "alert-" + id + "-title";
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
    var address = alert.client_address
      ? el("a", { href: A.mapLink(alert.client_address), rel: "noopener", target: "_blank" }, [
          alert.client_address,
          el("span", { "class": "visually-hidden", text: " (" + t("map") + ")" })
        ])
      : null;
    var actions = [];
    if (open && !alert.answered_at) {
      actions.push(el("div", { "class": "answer-group", role: "group", "aria-label": t("alarms.answer") + ": " + alert.client_name }, [
        el("span", { "class": "group-label", "aria-hidden": "true", text: t("alarms.answer") + ":" })
      ].concat(["reached", "not_reached", "unclear"].map(function (c) {
        return button("answer", A.label("contacts", c), alert.client_name, { "data-contact": c, "class": "act" + (c === "reached" ? "" : " secondary") });
      }))));
    }
    if (open) { actions.push(button("dispatch", t("alarms.dispatch"), alert.client_name)); }
    actions.push(button("resolve", t("action.resolve"), alert.client_name));
    actions.push(button("cancel", t("alarms.cancel"), alert.client_name));
    if (busy.has(id)) {
      actions.forEach(function (a) {
        Array.prototype.forEach.call(a.tagName === "BUTTON" ? [a] : a.querySelectorAll("button"), function (b) {
          b.setAttribute("aria-disabled", "true");
        });
      });
    }
    var error = errors.get(id);
    return el("li", {
      "class": "alert-card prio-" + alert.priority + (waiting ? " unanswered" : ""),
      "data-alert": id,
      "data-status": alert.status
    }, [
      el("article", { "aria-labelledby": titleId }, [
        el("h3", { id: titleId }, [
          el("span", { "class": "prio prio-" + alert.priority, text: A.label("priorities", alert.priority) }),
          " " + A.label("kinds", alert.kind) + ": ",
          el("span", { lang: alert.client_language || null, text: alert.client_name })
        ]),
        el("p", { "class": "alert-meta" }, meta),
        el("dl", { "class": "alert-facts" }, []
          .concat(fact(t("address"), address))
          .concat(fact(t("door"), alert.door_instructions))
          .concat(fact(t("notes"), alert.care_notes))
          .concat(fact(t("team"), team))),
        el("p", { "class": "claimed" }, [who, contact ? " · " + contact : ""]),
        error ? el("p", { "class": "error", role: "alert", text: error }) : null,
        el("div", { "class": "alert-actions" }, actions)
      ])
    ]);
  }

  function draw() {
    var alerts = Array.from(live.alerts.values()).sort(queueOrder);
    var focused = document.activeElement;
    var focusCard = focused && list.contains(focused) ? focused.closest("[data-alert]") : null;
    var focusId = focusCard ? focusCard.getAttribute("data-alert") : null;
    var focusKey = focused && focused.getAttribute ? (focused.getAttribute("data-action") || "") + (focused.getAttribute("data-contact") || "") : "";
    var existing = new Map();
    Array.prototype.forEach.call(list.children, function (li) { existing.set(li.getAttribute("data-alert"), li); });
    var refocus = false;
    alerts.forEach(function (alert, index) {
      var sig = alert.updated_at + "|" + (errors.get(alert.id) || "") + "|" + busy.has(alert.id);
      var li = existing.get(alert.id);
      if (!li || li.getAttribute("data-sig") !== sig) {
        var fresh = card(alert);
        fresh.setAttribute("data-sig", sig);
        if (li) {
          if (alert.id === focusId) { refocus = true; }
          list.replaceChild(fresh, li);
        }
        li = fresh;
      }
      existing.delete(alert.id);
      if (list.children[index] !== li) {
        if (li.contains(document.activeElement)) { refocus = true; }
        list.insertBefore(li, list.children[index] || null);
      }
    });
    existing.forEach(function (li, id) {
      if (id === focusId) { refocus = true; focusId = null; }
      li.remove();
    });
    if (refocus) {
      var target = focusId ? list.querySelector('[data-alert="' + focusId + '"]') : null;
      var again = target && Array.prototype.find.call(target.querySelectorAll("button"), function (b) {
        return (b.getAttribute("data-action") || "") + (b.getAttribute("data-contact") || "") === focusKey;
      });
      var fallback = again || (target && target.querySelector("button"));
      if (fallback) { fallback.focus(); }
      else {
        var heading = document.getElementById("queue-heading");
        heading.setAttribute("tabindex", "-1");
        heading.focus();
      }
    }
    none.hidden = alerts.length > 0;
    var waiting = alerts.filter(unanswered).length;
    summary.textContent = alerts.length ? t("summary", { open: alerts.length, unack: waiting }) : "";
  }

  function onChange(alerts, info) {
    draw();
    var words = (info.added || []).slice(0, 3).map(function (a) {
      return t("new_alert", { kind: A.label("kinds", a.kind), client: a.client_name, address: a.client_address || "" });
    }).concat((info.closed || []).slice(0, 2).map(function (a) {
      errors.delete(a.id);
      return t("closed_alert", { client: a.client_name });
    }));
    if (words.length) { announce(words.join(". ")); }
    if ((info.closed || []).length) { loadReport(); }
  }

  var lastState = null;
  function onState(state, detail) {
    conn.setAttribute("data-state", state);
    var text;
    switch (state) {
      case "online": text = t("conn.online"); break;
      case "reconnecting": text = t("conn.reconnecting", { n: detail.seconds || 0 }); break;
      case "offline": text = t("conn.offline"); break;
      case "signed_out": text = t("conn.signed_out"); break;
      default: text = t("conn.connecting");
    }
    if (state === "signed_out") {
      connText.textContent = "";
      connText.appendChild(el("a", { href: A.config.login + "?next=" + encodeURIComponent(location.pathname), text: text }));
    } else {
      connText.textContent = text;
    }
    stale.hidden = state === "online";
    list.classList.toggle("stale", state !== "online");
    if (state !== lastState && lastState !== null) { actionStatus.textContent = text; }
    lastState = state;
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

  var live = new A.Live({ onChange: onChange, onState: onState, onTick: onTick });

  // ---- Actions -----------------------------------------------------------

  function run(id, body) {
    if (busy.has(id)) { return Promise.resolve(null); }
    busy.add(id);
    errors.delete(id);
    draw();
    return A.act(id, body).then(function (result) {
      busy.delete(id);
      if (result.ok && result.alert) {
        live.apply(result.alert);
        actionStatus.textContent = t("done", { status: A.label("statuses", result.alert.status) });
      } else {
        actionStatus.textContent = t("failed") + ": " + result.message;
      }
      draw();
      return result;
    });
  }

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
      run(id, { action: "answer", contact: btn.getAttribute("data-contact") }).then(function (result) {
        if (result && !result.ok) {
          errors.set(id, t("failed") + ": " + result.message);
          draw();
        }
      });
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
