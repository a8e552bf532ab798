// The night patrol's phone app: the live alert list, an alarm sound and
// vibration while anything is unacknowledged, and one-tap actions.
(function () {
  "use strict";

  var A = window.EtahoivaAlerts;
  var t = A.t, el = A.el;
  var me = A.config.user_id;

  var list = document.getElementById("alerts");
  var none = document.getElementById("no-alerts");
  var summary = document.getElementById("summary");
  var announcer = document.getElementById("announce");
  var actionStatus = document.getElementById("action-status");
  var dutyButton = document.getElementById("duty");
  var dutyHint = document.getElementById("duty-hint");
  var baseTitle = document.title;

  var current = [];           // the alerts as last drawn

  // ---- Sound and vibration ----------------------------------------------

  var audio = null;
  var ringTimer = null;
  var wakeLock = null;

  function unlockAudio() {
    if (audio) {
      if (audio.state === "suspended") { audio.resume(); }
      return;
    }
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) { return; }
    try {
      audio = new Context();
      if (audio.state === "suspended") { audio.resume(); }
    } catch (e) {
      audio = null;
    }
  }

  function tone(freq, start, length) {
    var osc = audio.createOscillator();
    var gain = audio.createGain();
    osc.type = "square";
    osc.frequency.setValueAtTime(freq, start);
    gain.gain.setValueAtTime(0.0001, start);
    gain.gain.exponentialRampToValueAtTime(0.9, start + 0.02);
    gain.gain.setValueAtTime(0.9, start + length - 0.03);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + length);
    osc.connect(gain);
    gain.connect(audio.destination);
    osc.start(start);
    osc.stop(start + length + 0.02);
  }

  // One round of the two-tone alarm.
  function ringOnce() {
    if (navigator.vibrate) { navigator.vibrate([500, 150, 500, 150, 500]); }
    if (!audio) { return; }
    if (audio.state === "suspended") { audio.resume(); }
    var start = audio.currentTime + 0.02;
    for (var i = 0; i < 4; i += 1) {
      tone(i % 2 === 0 ? 1046 : 784, start + i * 0.28, 0.25);
    }
  }

  function setRinging(on) {
    document.body.setAttribute("data-ringing", on ? "true" : "false");
    var audible = on && document.body.getAttribute("data-duty") === "on";
    document.body.setAttribute("data-sound", audible ? "on" : "off");
    if (audible && !ringTimer) {
      ringOnce();
      ringTimer = setInterval(ringOnce, 2000);
    } else if (!audible && ringTimer) {
      clearInterval(ringTimer);
      ringTimer = null;
      if (navigator.vibrate) { navigator.vibrate(0); }
    }
    dutyHint.textContent = on && !audible ? t("sound_off") : (audible ? "" : t("start_hint"));
    dutyHint.classList.toggle("warning", on && !audible);
  }

  function keepScreenOn() {
    if (!("wakeLock" in navigator) || wakeLock) { return; }
    navigator.wakeLock.request("screen").then(function (lock) {
      wakeLock = lock;
      lock.addEventListener("release", function () { wakeLock = null; });
    }, function () { /* not allowed now; tried again when visible */ });
  }

  function startDuty() {
    unlockAudio();
    var already = document.body.getAttribute("data-duty") === "on";
    document.body.setAttribute("data-duty", "on");
    dutyButton.textContent = t("on_duty");
    keepScreenOn();
    if (already && audio && !ringTimer) {
      // Pressed again: a short test that the sound is on.
      tone(1046, audio.currentTime + 0.02, 0.2);
    }
    refreshAlarm();
  }

  dutyButton.addEventListener("click", startDuty);
  // Any tap lets the page make sound; the duty button says so explicitly.
  document.addEventListener("pointerdown", unlockAudio, { once: true });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && document.body.getAttribute("data-duty") === "on") {
      keepScreenOn();
    }
  });

  function refreshAlarm() {
    var waiting = current.filter(A.isUnacknowledged).length;
    setRinging(waiting > 0);
    document.title = (waiting > 0 ? "(" + waiting + ") " : "") + baseTitle;
  }

  // ---- The list ----------------------------------------------------------

  function actionsOf(alert) {
    switch (alert.status) {
      case "raised":
      case "routed":
        return ["acknowledge", "en_route", "on_site", "resolve"];
      case "acknowledged":
        return ["en_route", "on_site", "resolve"];
      case "en_route":
        return ["on_site", "resolve"];
      case "on_site":
        return ["resolve"];
      default:
        return [];
    }
  }

  function card(alert) {
    var claimed;
    if (alert.claimed_by && alert.claimed_by === me) {
      claimed = el("p", { "class": "claimed mine", text: t("claimed_by_me") });
    } else if (alert.claimed_by) {
      claimed = el("p", { "class": "claimed", text: t("claimed_by", { name: alert.claimed_by_name || alert.claimed_by }) });
    } else {
      claimed = el("p", { "class": "claimed nobody", text: t("not_claimed") });
    }
    var team = alert.team_name || "";
    if (alert.escalated_team_name) {
      team = (team ? team + " · " : "") + t("escalated", { team: alert.escalated_team_name });
    }
    if (alert.level > 0 && !alert.escalated_team_name) {
      team = (team ? team + " · " : "") + t("level", { n: alert.level });
    }
    var buttons = actionsOf(alert).map(function (action) {
      return el("button", {
        type: "button",
        "class": "act act-" + action + (action === "acknowledge" ? "" : " secondary"),
        "data-action": action,
        "aria-disabled": actions.busy.has(alert.id) ? "true" : null
      }, [
        t("action." + action),
        el("span", { "class": "visually-hidden", text: ": " + alert.client_name })
      ]);
    });
    var meta = [
      el("span", { "class": "status status-" + alert.status, text: A.label("statuses", alert.status) }),
      " · ",
      el("time", { datetime: new Date(alert.raised_at).toISOString(), "data-since": alert.raised_at }, [
        A.ago(live.now() - alert.raised_at)
      ]),
      " (" + A.clock(alert.raised_at) + ")"
    ];
    if (alert.count > 1) { meta.push(" · ", el("strong", { text: t("presses", { n: alert.count }) })); }
    return A.card(alert, {
      mark: A.isUnacknowledged(alert) ? "unack" : "",
      meta: meta,
      team: team,
      claimed: claimed,
      error: actions.errors.get(alert.id),
      actions: buttons
    });
  }

  // Draws the list, replacing only cards that changed and keeping focus.
  function draw(alerts) {
    current = alerts;
    A.drawList(list, alerts, card, function (a) { return actions.signature(a); }, "alerts-heading");
    none.hidden = alerts.length > 0;
    var waiting = alerts.filter(A.isUnacknowledged).length;
    summary.textContent = alerts.length ? t("summary", { open: alerts.length, unack: waiting }) : "";
    refreshAlarm();
  }

  function redraw() { draw(live.list()); }

  function onChange(alerts, info) {
    actions.forgetClosed(info);
    draw(alerts);
    var words = A.changeWords(info);
    if (words) { A.announce(announcer, words); }
  }

  function onTick() {
    var now = live.now();
    Array.prototype.forEach.call(list.querySelectorAll("time[data-since]"), function (node) {
      node.textContent = A.ago(now - Number(node.getAttribute("data-since")));
    });
  }

  var live = new A.Live({ onChange: onChange, onState: A.connectionView(list, actionStatus), onTick: onTick });

  // ---- Actions -----------------------------------------------------------

  // A refusal is shown on its card, but for a resolve the hub wants a
  // reason for: the dialog asks for it.
  var actions = new A.Actions({
    live: live,
    status: actionStatus,
    redraw: redraw,
    refusal: function (result, body) {
      return result.status === 422 && body.action === "resolve" ? null : "card";
    }
  });

  function run(id, body) { return actions.run(id, body); }

  list.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-action]");
    if (!button || !list.contains(button)) { return; }
    var id = button.closest("[data-alert]").getAttribute("data-alert");
    var action = button.getAttribute("data-action");
    if (button.getAttribute("aria-disabled") === "true") { return; }
    if (action === "resolve") { openResolve(id, button); return; }
    run(id, { action: action });
  });

  // ---- Resolving ---------------------------------------------------------

  var dialog = document.getElementById("resolve");
  var form = document.getElementById("resolve-form");
  var note = document.getElementById("resolve-note");
  var reasonBox = document.getElementById("resolve-reason-box");
  var reason = document.getElementById("resolve-reason");
  var resolveError = document.getElementById("resolve-error");
  var resolveClient = document.getElementById("resolve-client");
  var resolving = null;   // {id, opener}

  function openResolve(id, opener) {
    var alert = live.alerts.get(id);
    if (!alert) { return; }
    resolving = { id: id, opener: opener };
    form.reset();
    reasonBox.hidden = true;
    reason.required = false;
    resolveError.hidden = true;
    resolveError.textContent = "";
    resolveClient.textContent = A.label("kinds", alert.kind) + ": " + alert.client_name;
    dialog.showModal();
    var first = form.querySelector("input[name=outcome]");
    if (first) { first.focus(); }
  }

  function closeResolve() {
    if (dialog.open) { dialog.close(); }
  }

  dialog.addEventListener("close", function () {
    var opener = resolving && resolving.opener;
    resolving = null;
    if (opener && document.body.contains(opener)) { opener.focus(); }
  });
  document.getElementById("resolve-back").addEventListener("click", closeResolve);

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!resolving) { return; }
    var picked = form.querySelector("input[name=outcome]:checked");
    if (!picked) { form.reportValidity(); return; }
    var body = { action: "resolve", outcome: picked.value };
    if (note.value.trim()) { body.note = note.value.trim(); }
    if (!reasonBox.hidden && reason.value.trim()) { body.reason = reason.value.trim(); }
    var id = resolving.id;
    run(id, body).then(function (result) {
      if (!result) { return; }
      if (result.ok) { closeResolve(); return; }
      resolveError.hidden = false;
      resolveError.textContent = result.message;
      if (result.status === 422) {
        // The hub wants the reason for closing without a visit or a contact.
        reasonBox.hidden = false;
        reason.required = true;
        reason.focus();
      }
    });
  });

  // ---- Start ---------------------------------------------------------------

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/patrol-sw.js", { scope: "/" }).catch(function () {
      /* no offline shell, the app still works online */
    });
  }
  draw([]);
  live.start();
}());
