// The live alert list shared by the patrol app and the nurse's alarm queue:
// the WebSocket to the hub with reconnection and a watchdog, the alerts this
// user may see, texts in the user's language, and the action requests.
(function () {
  "use strict";

  var SILENCE_LIMIT_MS = 40000;   // the hub pings every 15 s
  var BACKOFF_FIRST_MS = 1000;
  var BACKOFF_MAX_MS = 30000;
  var PRIORITY_RANK = { critical: 0, high: 1, normal: 2 };
  var OPEN = { raised: true, routed: true, acknowledged: true, en_route: true, on_site: true };

  function readConfig() {
    var island = document.getElementById("alert-config");
    return JSON.parse(island.textContent);
  }

  var config = readConfig();

  // The text of `key` with `%{name}` placeholders filled from `vars`.
  function t(key, vars) {
    var text = config.texts[key];
    if (typeof text !== "string") { text = key; }
    if (vars) {
      Object.keys(vars).forEach(function (name) {
        text = text.split("%{" + name + "}").join(String(vars[name]));
      });
    }
    return text;
  }

  function label(group, code) {
    var labels = config[group] || {};
    return labels[code] || code || "";
  }

  function isOpen(alert) { return !!OPEN[alert.status]; }
  function isUnacknowledged(alert) { return alert.status === "raised" || alert.status === "routed"; }

  // Highest priority first, then the oldest.
  function byUrgency(a, b) {
    var pa = PRIORITY_RANK[a.priority], pb = PRIORITY_RANK[b.priority];
    if (pa === undefined) { pa = 3; }
    if (pb === undefined) { pb = 3; }
    if (pa !== pb) { return pa - pb; }
    if (a.raised_at !== b.raised_at) { return a.raised_at - b.raised_at; }
    return a.id < b.id ? -1 : 1;
  }

  var relative = (window.Intl && Intl.RelativeTimeFormat)
    ? new Intl.RelativeTimeFormat(config.lang, { numeric: "always", style: "long" })
    : null;

  // "5 minutes ago" in the user's language.
  function ago(ms) {
    var secs = Math.max(0, Math.round(ms / 1000));
    var value, unit;
    if (secs < 60) { value = secs; unit = "second"; }
    else if (secs < 3600) { value = Math.floor(secs / 60); unit = "minute"; }
    else if (secs < 86400) { value = Math.floor(secs / 3600); unit = "hour"; }
    else { value = Math.floor(secs / 86400); unit = "day"; }
    if (relative) { return relative.format(-value, unit); }
    return "-" + value + " " + unit;
  }

  // "4:07" (or "1:04:07"): time waited, to the second.
  function elapsed(ms) {
    var secs = Math.max(0, Math.floor(ms / 1000));
    var h = Math.floor(secs / 3600), m = Math.floor(secs / 60) % 60, s = secs % 60;
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    return (h > 0 ? h + ":" + two(m) : String(m)) + ":" + two(s);
  }

  function clock(ms) {
    try {
      return new Date(ms).toLocaleTimeString(config.lang, { hour: "2-digit", minute: "2-digit" });
    } catch (e) {
      return new Date(ms).toISOString().slice(11, 16);
    }
  }

  // A link that opens the address in the phone's map app (Android knows
  // `geo:`), elsewhere in OpenStreetMap.
  function mapLink(address) {
    var query = encodeURIComponent(address);
    if (/Android/i.test(navigator.userAgent)) { return "geo:0,0?q=" + query; }
    return "https://www.openstreetmap.org/search?query=" + query;
  }

  // Builds an element: el("p", {class: "x"}, ["text", child]).
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (name) {
        var value = attrs[name];
        if (value === null || value === undefined || value === false) { return; }
        if (name === "text") { node.textContent = value; }
        else { node.setAttribute(name, value === true ? "" : String(value)); }
      });
    }
    (children || []).forEach(function (child) {
      if (child === null || child === undefined || child === false) { return; }
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  // POST /api/v1/alerts/{id}/actions; resolves to {ok, status, alert, error}.
  function act(id, body) {
    return fetch(config.alerts + "/" + encodeURIComponent(id) + "/actions", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (j) { return j; }, function () { return null; }).then(function (j) {
        if (r.ok) { return { ok: true, status: r.status, alert: j }; }
        var error = (j && j.error) || {};
        var message = error.message || String(r.status);
        return { ok: false, status: r.status, error: error, message: message };
      });
    }, function () {
      return { ok: false, status: 0, message: t("not_sent") };
    });
  }

  // The live connection. `handlers`: onChange(alerts, info) after every
  // change of the list, onState(state, detail) when the connection changes.
  // States: connecting, online, reconnecting, offline, signed_out.
  function Live(handlers) {
    this.handlers = handlers;
    this.alerts = new Map();
    this.socket = null;
    this.state = "connecting";
    this.attempts = 0;
    this.lastHeard = 0;
    this.retryAt = 0;
    this.retryTimer = null;
    this.skew = 0;          // server clock minus ours
    this.seen = new Set();  // alert ids reported as seen
    this.hadSnapshot = false;
    this.signedOut = false;
  }

  Live.prototype.now = function () { return Date.now() + this.skew; };

  Live.prototype.list = function () {
    return Array.from(this.alerts.values()).sort(byUrgency);
  };

  Live.prototype.start = function () {
    var live = this;
    window.addEventListener("online", function () { live.reconnectNow(); });
    window.addEventListener("offline", function () {
      live.setState("offline");
      if (live.socket) { live.socket.close(); }
    });
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState !== "visible") { return; }
      live.checkSilence();
      if (!live.socket) { live.reconnectNow(); }
      live.reportSeen();
    });
    setInterval(function () { live.checkSilence(); live.tick(); }, 1000);
    this.connect();
  };

  Live.prototype.setState = function (state, detail) {
    this.state = state;
    this.handlers.onState(state, detail || {});
  };

  Live.prototype.url = function () {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    return scheme + location.host + config.live;
  };

  Live.prototype.connect = function () {
    var live = this;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.socket || this.signedOut) { return; }
    if (navigator.onLine === false) { this.setState("offline"); return; }
    this.setState(this.hadSnapshot ? "reconnecting" : "connecting", { seconds: 0 });
    var socket;
    try {
      socket = new WebSocket(this.url());
    } catch (e) {
      this.retry();
      return;
    }
    this.socket = socket;
    this.lastHeard = Date.now();
    socket.onmessage = function (event) {
      if (live.socket !== socket) { return; }
      live.lastHeard = Date.now();
      var message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      live.receive(message);
    };
    socket.onclose = function () {
      if (live.socket !== socket) { return; }
      live.socket = null;
      live.retry();
    };
    socket.onerror = function () { /* onclose follows */ };
  };

  Live.prototype.receive = function (message) {
    if (typeof message.server_time === "number") {
      this.skew = message.server_time - Date.now();
    }
    if (message.type === "snapshot") {
      var before = this.alerts;
      this.alerts = new Map();
      var fresh = [];
      (message.alerts || []).forEach(function (a) {
        if (!isOpen(a)) { return; }
        this.alerts.set(a.id, a);
        if (!before.has(a.id)) { fresh.push(a); }
      }, this);
      var closed = [];
      before.forEach(function (a, id) { if (!this.alerts.has(id)) { closed.push(a); } }, this);
      var first = !this.hadSnapshot;
      this.hadSnapshot = true;
      this.attempts = 0;
      this.setState("online");
      this.changed({ snapshot: true, first: first, added: fresh, closed: closed });
    } else if (message.type === "alert" && message.alert) {
      var alert = message.alert;
      var known = this.alerts.get(alert.id);
      if (known && known.updated_at > alert.updated_at) { return; }
      if (isOpen(alert)) {
        this.alerts.set(alert.id, alert);
        this.changed({ added: known ? [] : [alert], updated: known ? [alert] : [], closed: [] });
      } else if (known) {
        this.alerts.delete(alert.id);
        this.changed({ added: [], closed: [alert] });
      }
    }
    // `ping` only proves the line is alive.
  };

  // An action's answer: the alert as it is now.
  Live.prototype.apply = function (alert) {
    this.receive({ type: "alert", alert: alert });
  };

  Live.prototype.changed = function (info) {
    this.handlers.onChange(this.list(), info);
    this.reportSeen();
  };

  // Tells the hub which alerts were shown on this device (the page is visible).
  Live.prototype.reportSeen = function () {
    if (document.visibilityState === "hidden") { return; }
    var socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) { return; }
    this.alerts.forEach(function (a, id) {
      if (this.seen.has(id)) { return; }
      try {
        socket.send(JSON.stringify({ type: "seen", alert_id: id }));
        this.seen.add(id);
      } catch (e) { /* sent after the reconnect */ }
    }, this);
  };

  Live.prototype.checkSilence = function () {
    if (this.socket && Date.now() - this.lastHeard > SILENCE_LIMIT_MS) {
      // Nothing, not even a ping: the line is dead even if the socket thinks not.
      var socket = this.socket;
      this.socket = null;
      try { socket.close(); } catch (e) { /* gone anyway */ }
      this.retry();
    }
  };

  Live.prototype.tick = function () {
    if (this.retryTimer && (this.state === "reconnecting" || this.state === "connecting")) {
      var left = Math.max(0, Math.ceil((this.retryAt - Date.now()) / 1000));
      this.setState("reconnecting", { seconds: left });
    }
    if (this.handlers.onTick) { this.handlers.onTick(); }
  };

  Live.prototype.retry = function () {
    var live = this;
    if (this.retryTimer || this.signedOut) { return; }
    if (navigator.onLine === false) { this.setState("offline"); return; }
    var base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * Math.pow(2, this.attempts));
    var delay = Math.round(base / 2 + Math.random() * base / 2);
    this.attempts += 1;
    this.retryAt = Date.now() + delay;
    this.retryTimer = setTimeout(function () {
      live.retryTimer = null;
      live.connect();
    }, delay);
    this.setState("reconnecting", { seconds: Math.ceil(delay / 1000) });
    if (this.attempts >= 3) { this.checkSession(); }
  };

  Live.prototype.reconnectNow = function () {
    if (this.socket) { return; }
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.connect();
  };

  // After repeated failures: is it the network, or did the session end?
  Live.prototype.checkSession = function () {
    var live = this;
    fetch(config.me, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) {
        if (r.status !== 401) { return; }
        // Only signing in again helps: stop trying and say so.
        live.signedOut = true;
        clearTimeout(live.retryTimer);
        live.retryTimer = null;
        if (live.socket) { live.socket.close(); live.socket = null; }
        live.setState("signed_out");
      }, function () { /* the network: keep retrying */ });
  };

  // ---- What both pages draw ------------------------------------------------

  // Says `text` through the live region `node`, cleared first so that the
  // same words are read again.
  function announce(node, text) {
    node.textContent = "";
    setTimeout(function () { node.textContent = text; }, 50);
  }

  // What a change of the list says aloud: a few new alerts, a few closed ones.
  function changeWords(info) {
    var news = (info.added || []).map(function (a) {
      return t("new_alert", { kind: label("kinds", a.kind), client: a.client_name, address: a.client_address || "" });
    });
    var gone = (info.closed || []).map(function (a) {
      return t("closed_alert", { client: a.client_name });
    });
    return news.slice(0, 3).concat(gone.slice(0, 2)).join(". ");
  }

  function fact(term, value) {
    if (value === null || value === undefined || value === "") { return []; }
    return [el("dt", { text: term }), el("dd", {}, [value])];
  }

  // The client's address, team and notes, the address linked to the map.
  function facts(alert, team) {
    var address = alert.client_address
      ? el("a", { href: mapLink(alert.client_address), rel: "noopener", target: "_blank" }, [
          alert.client_address,
          el("span", { "class": "visually-hidden", text: " (" + t("map") + ")" })
        ])
      : null;
    return el("dl", { "class": "alert-facts" }, []
      .concat(fact(t("address"), address))
      .concat(fact(t("door"), alert.door_instructions))
      .concat(fact(t("notes"), alert.care_notes))
      .concat(fact(t("team"), team)));
  }

  // An alert's card in the list: its heading, then `parts`: meta (the line
  // under the heading), team, claimed (who has it), error (the last refusal)
  // and actions; `mark` is a further class of the card.
  function card(alert, parts) {
    var titleId = "alert-" + alert.id + "-title";
    return el("li", {
      "class": "alert-card prio-" + alert.priority + (parts.mark ? " " + parts.mark : ""),
      "data-alert": alert.id,
      "data-status": alert.status,
      "data-updated": alert.updated_at
    }, [
      el("article", { "aria-labelledby": titleId }, [
        el("h3", { id: titleId }, [
          el("span", { "class": "prio prio-" + alert.priority, text: label("priorities", alert.priority) }),
          " " + label("kinds", alert.kind) + ": ",
          el("span", { lang: alert.client_language || null, text: alert.client_name })
        ]),
        el("p", { "class": "alert-meta" }, parts.meta),
        facts(alert, parts.team),
        parts.claimed,
        parts.error ? el("p", { "class": "error", role: "alert", text: parts.error }) : null,
        el("div", { "class": "alert-actions" }, parts.actions)
      ])
    ]);
  }

  // The key of an action button: its action and, for answers, the contact.
  function buttonKey(node) {
    if (!node || !node.getAttribute) { return ""; }
    return (node.getAttribute("data-action") || "") + (node.getAttribute("data-contact") || "");
  }

  // Draws `alerts` into `list` in their order, replacing only the cards whose
  // `signature(alert)` changed (new ones from `makeCard(alert)`). A focus lost
  // with a replaced or moved card goes to the same button on the new card,
  // else its first button or heading, else (the alert left) to the heading
  // with the id `headingId`.
  function drawList(list, alerts, makeCard, signature, headingId) {
    var focused = document.activeElement;
    var focusCard = focused && list.contains(focused) ? focused.closest("[data-alert]") : null;
    var focusId = focusCard ? focusCard.getAttribute("data-alert") : null;
    var focusKey = buttonKey(focused);
    var existing = new Map();
    Array.prototype.forEach.call(list.children, function (li) {
      existing.set(li.getAttribute("data-alert"), li);
    });
    var focusLost = false;
    alerts.forEach(function (alert, index) {
      var li = existing.get(alert.id);
      var sig = signature(alert);
      if (!li || li.getAttribute("data-sig") !== sig) {
        var fresh = makeCard(alert);
        fresh.setAttribute("data-sig", sig);
        if (li) {
          if (alert.id === focusId) { focusLost = true; }
          list.replaceChild(fresh, li);
        }
        li = fresh;
      }
      existing.delete(alert.id);
      if (list.children[index] !== li) {
        if (li.contains(document.activeElement)) { focusLost = true; }
        list.insertBefore(li, list.children[index] || null);
      }
    });
    existing.forEach(function (li, id) {
      if (id === focusId) { focusLost = true; focusId = null; }
      li.remove();
    });
    if (!focusLost) { return; }
    var target = focusId ? list.querySelector('[data-alert="' + focusId + '"]') : null;
    var buttons = target ? target.querySelectorAll("button[data-action]") : [];
    var again = Array.prototype.find.call(buttons, function (b) { return focusKey && buttonKey(b) === focusKey; });
    var next = again || buttons[0] || (target && target.querySelector("h3")) || document.getElementById(headingId);
    if (next.tagName !== "BUTTON") { next.setAttribute("tabindex", "-1"); }
    next.focus();
  }

  // The connection indicator, the stale-list warning over `list`, and the
  // status region `status` that hears of each change once (the countdown is
  // not announced); returns the `onState` handler of `Live`.
  function connectionView(list, status) {
    var conn = document.getElementById("conn");
    var connText = document.getElementById("conn-text");
    var stale = document.getElementById("stale");
    var lastState = null;
    return function (state, detail) {
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
        connText.appendChild(el("a", { href: config.login + "?next=" + encodeURIComponent(location.pathname), text: text }));
      } else {
        connText.textContent = text;
      }
      stale.hidden = state === "online";
      list.classList.toggle("stale", state !== "online");
      if (state !== lastState && lastState !== null) { status.textContent = text; }
      lastState = state;
    };
  }

  // ---- Actions from the page -----------------------------------------------

  // The actions under way (`busy`, alert ids) and the last refusal of each
  // alert (`errors`). `options`: live (the `Live` list), status (the status
  // region), redraw(), and refusal(result, body): where a refusal is shown,
  // "card" (and the status region), "status", or nothing.
  function Actions(options) {
    this.options = options;
    this.busy = new Set();
    this.errors = new Map();
  }

  // The state of `alert`'s card: a card is drawn again when it changes.
  Actions.prototype.signature = function (alert) {
    return alert.updated_at + "|" + alert.status + "|" + (this.errors.get(alert.id) || "") + "|" + this.busy.has(alert.id);
  };

  // Forgets the refusals of the alerts `info` says were closed.
  Actions.prototype.forgetClosed = function (info) {
    (info.closed || []).forEach(function (a) { this.errors.delete(a.id); }, this);
  };

  // Runs one action on alert `id` (none while another is under way); resolves
  // to the result of `act`, or null when nothing was sent.
  Actions.prototype.run = function (id, body) {
    var self = this, o = this.options;
    if (this.busy.has(id)) { return Promise.resolve(null); }
    this.busy.add(id);
    this.errors.delete(id);
    o.redraw();
    return act(id, body).then(function (result) {
      self.busy.delete(id);
      if (result.ok && result.alert) {
        o.live.apply(result.alert);
        o.status.textContent = t("done", { status: label("statuses", result.alert.status) });
      } else {
        var where = o.refusal(result, body);
        var text = t("failed") + ": " + result.message;
        if (where === "card") { self.errors.set(id, text); }
        if (where) { o.status.textContent = text; }
      }
      o.redraw();
      return result;
    });
  };

  window.EtahoivaAlerts = {
    config: config,
    t: t,
    label: label,
    isOpen: isOpen,
    isUnacknowledged: isUnacknowledged,
    byUrgency: byUrgency,
    ago: ago,
    elapsed: elapsed,
    clock: clock,
    mapLink: mapLink,
    el: el,
    act: act,
    Live: Live,
    announce: announce,
    changeWords: changeWords,
    card: card,
    drawList: drawList,
    connectionView: connectionView,
    Actions: Actions
  };
}());
