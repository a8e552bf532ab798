// A professional's invitations into video visits, live over the call
// signalling WebSocket: each with a link to join the call.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("invitations-config").textContent);
  var list = document.getElementById("invitations");
  var none = document.getElementById("no-invitations");
  var retry = 1000;
  function show(message) {
    var item = document.createElement("li");
    var text = document.createElement("span");
    text.textContent = config.texts.invited.replace("{by}", message.by).replace("{client}", message.client_first_name);
    var link = document.createElement("a");
    link.href = "/console/call/" + encodeURIComponent(message.call_id);
    link.className = "button";
    link.textContent = config.texts.join;
    item.appendChild(text);
    item.appendChild(document.createTextNode(" "));
    item.appendChild(link);
    list.insertBefore(item, list.firstChild);
    none.hidden = true;
  }
  function connect() {
    var scheme = location.protocol === "https:" ? "wss:" : "ws:";
    var socket = new WebSocket(scheme + "//" + location.host + config.signalling);
    socket.onopen = function () { retry = 1000; };
    socket.onmessage = function (event) {
      var message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      if (message.type === "invited") { show(message); }
    };
    socket.onclose = function () {
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 15000);
    };
  }
  connect();
})();
