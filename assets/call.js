// The console's call screen: one WebRTC connection to the hub's relay (the
// hub offers, the page answers), the client's picture and sound, the
// nurse's camera and microphone, mute, camera off, hang up, a quality
// indicator, and an ICE restart when the network changes.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("call-config").textContent);
  var callId = config.call_id;
  function t(key) { return config.texts[key] || key; }
  var stateEl = document.getElementById("call-state");
  var errorEl = document.getElementById("call-error");
  var remoteVideo = document.getElementById("remote-video");
  var remoteAudio = document.getElementById("remote-audio");
  var localVideo = document.getElementById("local-video");
  var muteButton = document.getElementById("mute");
  var cameraButton = document.getElementById("camera");
  var hangUpButton = document.getElementById("hang-up");

  var pc = null;
  var legId = null;
  var socket = null;
  var local = null;
  var ended = false;
  var retry = 1000;
  var restartTimer = null;
  var status = "connecting";
  var guest = false;
  // Remote participants' media, by stream id (their leg id at the hub).
  var tiles = {};
  var names = {};

  // For inspection (tests, support): the connection and where the call is.
  window.etahoivaCall = {
    get pc() { return pc; },
    get legId() { return legId; },
    get state() { return status; },
    restartIce: function () { restartIce(); }
  };

  function say(key) {
    status = key;
    stateEl.textContent = t("state." + key);
  }

  function showError(message) {
    errorEl.textContent = message;
    errorEl.hidden = !message;
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(message));
    }
  }

  function localMedia() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      say("no_media");
      return Promise.resolve(null);
    }
    return navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true },
      video: { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 30 } }
    }).then(function (stream) {
      local = stream;
      localVideo.srcObject = stream;
      return stream;
    }).catch(function () {
      showError(t("state.no_media"));
      return null;
    });
  }

  // ?relay_only=1 forces the media through TURN (for checking a network
  // that blocks UDP to the relay).
  var relayOnly = /[?&]relay_only=1\b/.test(location.search);

  function newConnection(iceServers) {
    var connection = new RTCPeerConnection({
      bundlePolicy: "max-bundle", rtcpMuxPolicy: "require",
      iceServers: iceServers || [],
      iceTransportPolicy: relayOnly ? "relay" : "all"
    });
    connection.ontrack = function (event) {
      var id = event.streams && event.streams[0] ? event.streams[0].id : event.track.id;
      var tile = tileFor(id);
      if (event.track.kind === "audio") {
        tile.audio.srcObject = new MediaStream([event.track]);
      } else {
        tile.video.srcObject = new MediaStream([event.track]);
      }
    };
    connection.onicecandidate = function (event) {
      if (legId) {
        send({
          type: "candidate", call_id: callId, leg_id: legId,
          candidate: event.candidate ? event.candidate.candidate : ""
        });
      }
    };
    connection.onconnectionstatechange = function () {
      var s = connection.connectionState;
      if (s === "connected") {
        clearTimeout(restartTimer);
        restartTimer = null;
        if (status === "reconnecting" || status === "connecting" || status === "answered") {
          say("connected");
        }
      } else if (s === "disconnected") {
        // A moment's loss recovers by itself; a longer one needs fresh ICE.
        say("reconnecting");
        clearTimeout(restartTimer);
        restartTimer = setTimeout(restartIce, 2000);
      } else if (s === "failed") {
        say("reconnecting");
        restartIce();
      }
    };
    return connection;
  }

  // A tile per remote participant: the first is the page's main picture.
  function tileFor(id) {
    if (tiles[id]) { return tiles[id]; }
    var first = Object.keys(tiles).length === 0;
    var video = first ? remoteVideo : document.createElement("video");
    var audio = first ? remoteAudio : document.createElement("audio");
    var caption = null;
    if (!first) {
      var figure = document.createElement("figure");
      figure.className = "remote extra";
      video.autoplay = true;
      video.playsInline = true;
      audio.autoplay = true;
      caption = document.createElement("figcaption");
      figure.appendChild(video);
      figure.appendChild(caption);
      figure.appendChild(audio);
      document.querySelector(".call-videos").appendChild(figure);
    } else {
      caption = remoteVideo.parentNode.querySelector("figcaption");
    }
    tiles[id] = { video: video, audio: audio, caption: caption, figure: first ? null : video.parentNode };
    label(id);
    return tiles[id];
  }

  function label(id) {
    var tile = tiles[id];
    if (tile && tile.caption) {
      tile.caption.textContent = names[id] || t("remote");
      tile.video.setAttribute("aria-label", names[id] || t("remote"));
    }
  }

  // The page's camera and microphone go on the first track of each kind;
  // the hub's further tracks only bring other participants' media.
  function attachLocalTracks(connection) {
    var used = {};
    connection.getTransceivers().forEach(function (transceiver) {
      var kind = transceiver.receiver.track.kind;
      if (transceiver.sender.track) { used[kind] = true; return; }
      var track = !used[kind] && local && local.getTracks().filter(function (x) { return x.kind === kind; })[0];
      if (track) {
        transceiver.sender.replaceTrack(track);
        transceiver.direction = "sendrecv";
        used[kind] = true;
      } else {
        transceiver.direction = "recvonly";
      }
    });
  }

  function answerOffer(message) {
    if (!pc || message.leg_id !== legId) {
      if (pc) { pc.close(); }
      pc = newConnection(message.ice_servers);
      legId = message.leg_id;
    }
    var connection = pc;
    if (message.ice_servers && message.ice_servers.length && connection.setConfiguration) {
      // Fresh TURN credentials with every offer.
      try {
        connection.setConfiguration({
          bundlePolicy: "max-bundle", rtcpMuxPolicy: "require",
          iceServers: message.ice_servers,
          iceTransportPolicy: relayOnly ? "relay" : "all"
        });
      } catch (e) { /* the first configuration stays */ }
    }
    return connection.setRemoteDescription({ type: "offer", sdp: message.sdp }).then(function () {
      if (!message.ice_restart) { attachLocalTracks(connection); }
      return connection.createAnswer();
    }).then(function (answer) {
      return connection.setLocalDescription(answer);
    }).then(function () {
      send({ type: "answer", call_id: callId, leg_id: legId, sdp: connection.localDescription.sdp });
    }).catch(function (e) {
      showError(String(e && e.message || e));
    });
  }

  function restartIce() {
    clearTimeout(restartTimer);
    restartTimer = null;
    if (!ended && legId) {
      send({ type: "restart_ice", call_id: callId, leg_id: legId });
    }
  }

  function end(reason) {
    if (ended) { return; }
    ended = true;
    say("ended");
    if (pc) { pc.close(); }
    if (local) { local.getTracks().forEach(function (track) { track.stop(); }); }
    muteButton.disabled = true;
    cameraButton.disabled = true;
    hangUpButton.disabled = true;
    if (socket) { socket.close(); }
    if (reason) { stateEl.dataset.reason = reason; }
  }

  function handle(message) {
    switch (message.type) {
      case "offer":
        answerOffer(message);
        break;
      case "state":
        if (message.state === "ended") {
          end(message.reason);
        } else if (message.state === "ringing" && status === "connecting") {
          say("ringing");
        } else if (message.state === "answered") {
          say(pc && pc.connectionState === "connected" ? "connected" : "answered");
        }
        break;
      case "connected":
        if (message.party === "terminal" && status !== "ended") { say("connected"); }
        break;
      case "disconnected":
        if (message.party === "terminal" && status !== "ended") { say("reconnecting"); }
        break;
      case "participants":
        var listEl = document.getElementById("participants");
        listEl.textContent = "";
        (message.participants || []).forEach(function (p) {
          names[p.leg_id] = p.name;
          label(p.leg_id);
          var li = document.createElement("li");
          li.textContent = p.name + (p.leg_id === legId ? " (" + t("local") + ")" : "");
          listEl.appendChild(li);
        });
        break;
      case "link":
        // A weak link: the hub sends that participant the sound only.
        var note = document.getElementById("call-link");
        if (message.audio_only) {
          note.textContent = t(message.leg_id === legId ? "link.mine" : "link.theirs");
          note.hidden = false;
        } else {
          note.textContent = "";
          note.hidden = true;
        }
        break;
      case "left":
        var gone = tiles[message.leg_id];
        if (gone && gone.figure) {
          gone.figure.parentNode.removeChild(gone.figure);
          delete tiles[message.leg_id];
        }
        break;
      case "refused":
        showError(message.message || t("state.refused"));
        if (!pc) { say("refused"); ended = true; }
        break;
      default:
        break;
    }
  }

  function connect() {
    if (ended) { return; }
    var scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(scheme + "//" + location.host + config.signalling);
    socket.onopen = function () {
      retry = 1000;
      send({ type: "join", call_id: callId });
    };
    socket.onmessage = function (event) {
      var message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      if (message.call_id && message.call_id !== callId && message.type !== "ping") { return; }
      handle(message);
    };
    socket.onclose = function () {
      if (!ended) {
        setTimeout(connect, retry);
        retry = Math.min(retry * 2, 15000);
      }
    };
  }

  muteButton.addEventListener("click", function () {
    if (!local) { return; }
    var muted = muteButton.getAttribute("aria-pressed") !== "true";
    local.getAudioTracks().forEach(function (track) { track.enabled = !muted; });
    muteButton.setAttribute("aria-pressed", String(muted));
    muteButton.textContent = t(muted ? "unmute" : "mute");
  });
  cameraButton.addEventListener("click", function () {
    if (!local) { return; }
    var off = cameraButton.getAttribute("aria-pressed") !== "true";
    local.getVideoTracks().forEach(function (track) { track.enabled = !off; });
    cameraButton.setAttribute("aria-pressed", String(off));
    cameraButton.textContent = t(off ? "camera_on" : "camera_off");
  });
  hangUpButton.addEventListener("click", function () {
    // A guest leaves; the caller ends the call for everybody.
    send({ type: guest ? "leave" : "hang_up", call_id: callId });
    end(guest ? "left" : "hung_up_by_staff");
  });

  // The caller may invite a second professional; for a guest the button leaves.
  var inviteForm = document.getElementById("invite");
  fetch(config.invitable, { credentials: "same-origin" }).then(function (r) {
    if (r.status === 403) {
      guest = true;
      hangUpButton.textContent = t("leave");
      return null;
    }
    return r.ok ? r.json() : null;
  }).then(function (people) {
    if (!people || !people.length) { return; }
    var select = document.getElementById("invite-user");
    people.forEach(function (p) {
      var option = document.createElement("option");
      option.value = p.id;
      option.textContent = p.display_name;
      select.appendChild(option);
    });
    inviteForm.hidden = false;
  }).catch(function () {});
  inviteForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var user = document.getElementById("invite-user").value;
    if (user) {
      send({ type: "invite", call_id: callId, user_id: user });
      document.getElementById("invite-status").textContent = t("invited");
    }
  });
  window.addEventListener("online", restartIce);

  // The quality indicator: what this browser receives, every two seconds.
  var last = null;
  setInterval(function () {
    if (!pc || ended) { return; }
    pc.getStats().then(function (report) {
      var bytes = 0, lost = 0, received = 0, rtt = null;
      report.forEach(function (s) {
        if (s.type === "inbound-rtp") {
          bytes += s.bytesReceived || 0;
          lost += Math.max(0, s.packetsLost || 0);
          received += s.packetsReceived || 0;
        } else if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded" &&
                   typeof s.currentRoundTripTime === "number") {
          rtt = s.currentRoundTripTime * 1000;
        }
      });
      var now = Date.now();
      if (last) {
        var seconds = Math.max(0.5, (now - last.at) / 1000);
        var kbps = Math.round((bytes - last.bytes) * 8 / seconds / 1000);
        var newLost = lost - last.lost, newReceived = received - last.received;
        var loss = newReceived + newLost > 0 ? 100 * newLost / (newReceived + newLost) : 0;
        var level = loss < 2 && (rtt === null || rtt < 300) && kbps > 150 ? "good"
          : loss < 8 && (rtt === null || rtt < 800) ? "fair" : "poor";
        document.getElementById("q-bitrate").textContent = kbps + " kbit/s";
        document.getElementById("q-loss").textContent = loss.toFixed(1) + " %";
        document.getElementById("q-rtt").textContent = rtt === null ? "–" : Math.round(rtt) + " ms";
        document.getElementById("q-level").textContent = t("quality." + level);
        document.getElementById("quality").dataset.level = level;
      }
      last = { at: now, bytes: bytes, lost: lost, received: received };
    });
  }, 2000);

  localMedia().then(connect);
})();
