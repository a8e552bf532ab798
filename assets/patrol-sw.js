// The patrol app's service worker: keeps the app shell (page, styles,
// scripts, icon) so that the app opens without a network and says that the
// connection is gone. Alerts and every other API answer always come from
// the network and are never stored here.
"use strict";

var VERSION = "__SHELL_VERSION__";
var CACHE = "etahoiva-patrol-" + VERSION;
var PAGE = "/console/patrol";
var SHELL = [
  PAGE,
  "/static/app.css",
  "/static/alerts-live.js",
  "/static/patrol.js",
  "/static/patrol-icon.svg",
  "/patrol.webmanifest"
];

// Shown when there is neither a network nor a stored copy of the page.
var OFFLINE_PAGE = "<!DOCTYPE html><html lang=\"fi\"><head><meta charset=\"utf-8\">" +
  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">" +
  "<title>Ei yhteyttä – Etahoiva</title>" +
  "<style>body{font-family:system-ui,sans-serif;font-size:1.2rem;margin:0;padding:2rem;background:#0d1b2a;color:#fff}" +
  "h1{font-size:1.6rem}a{display:inline-block;min-height:44px;line-height:44px;padding:0 1.25rem;margin-top:1rem;" +
  "background:#ffbf47;color:#000;font-weight:700;border-radius:6px;text-decoration:none}</style></head>" +
  "<body><main><h1>Ei yhteyttä</h1><p>Hälytyksiä ei voi nyt vastaanottaa. Tarkista verkkoyhteys.</p>" +
  "<h1 lang=\"sv\">Ingen anslutning</h1><p lang=\"sv\">Larm kan inte tas emot just nu. Kontrollera nätverket.</p>" +
  "<h1 lang=\"en\">No connection</h1><p lang=\"en\">Alerts cannot arrive right now. Check the network.</p>" +
  "<a href=\"" + PAGE + "\">Yritä uudelleen · Försök igen · Try again</a></main></body></html>";

function offline() {
  return new Response(OFFLINE_PAGE, {
    status: 503,
    headers: { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" }
  });
}

// Only a real copy is kept: never a sign-in page the request was sent to.
function keepable(response) {
  return response && response.ok && !response.redirected && response.type === "basic";
}

function store(request, response) {
  if (!keepable(response)) { return Promise.resolve(); }
  var copy = response.clone();
  return caches.open(CACHE).then(function (cache) { return cache.put(request, copy); });
}

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) {
    return Promise.all(SHELL.map(function (path) {
      return fetch(path, { credentials: "same-origin", cache: "no-cache" }).then(function (response) {
        if (keepable(response)) { return cache.put(path, response); }
      }, function () { /* fetched again on the next visit */ });
    }));
  }).then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (name) {
      return name.indexOf("etahoiva-patrol-") === 0 && name !== CACHE;
    }).map(function (name) { return caches.delete(name); }));
  }).then(function () { return self.clients.claim(); }));
});

// The network's answer, or a failure after `ms` so that a dead mobile
// network does not leave the patrol looking at a blank screen.
function fetchWithin(request, ms) {
  return new Promise(function (resolve, reject) {
    var timer = setTimeout(function () { reject(new Error("timeout")); }, ms);
    fetch(request).then(function (response) {
      clearTimeout(timer);
      resolve(response);
    }, function (error) {
      clearTimeout(timer);
      reject(error);
    });
  });
}

function isShell(url) {
  return SHELL.indexOf(url.pathname) !== -1;
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }
  if (request.method !== "GET") {
    // Signing out forgets the stored page (it names the user).
    if (request.method === "POST" && url.pathname === "/logout") {
      event.waitUntil(caches.delete(CACHE));
    }
    return;
  }
  // The API, the live socket and everything else outside the shell: the
  // network only, untouched.
  if (url.pathname.indexOf("/api/") === 0 || !isShell(url)) {
    if (request.mode === "navigate") {
      event.respondWith(fetchWithin(request, 15000).catch(offline));
    }
    return;
  }
  if (request.mode === "navigate" || url.pathname === PAGE) {
    // The page: fresh when the network answers, the stored copy when not.
    event.respondWith(fetchWithin(request, 8000).then(function (response) {
      event.waitUntil(store(PAGE, response));
      return response;
    }).catch(function () {
      return caches.match(PAGE, { ignoreSearch: true }).then(function (hit) { return hit || offline(); });
    }));
    return;
  }
  // Styles, scripts, icon: the network first (they are small), else the copy.
  event.respondWith(fetchWithin(request, 8000).then(function (response) {
    event.waitUntil(store(url.pathname, response));
    return response;
  }).catch(function () {
    return caches.match(url.pathname).then(function (hit) {
      return hit || new Response("", { status: 503 });
    });
  }));
});
