// Staydown web console: local times, live countdowns, confirmations and
// live lists. Our own code, no library; loaded from the node (the page's
// Content-Security-Policy allows no inline script). Everything it adds to
// a page goes in as text (textContent) or as HTML the node rendered.
"use strict";
(function () {
  var body = document.body;
  // The node's clock minus the browser's: countdowns run on the node's time.
  var skew = (Number(body.getAttribute("data-now-ms")) || Date.now()) - Date.now();

  function two(n) { return (n < 10 ? "0" : "") + n; }
  function fmtDur(s) {
    s = Math.floor(Math.abs(s));
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    if (d > 0) { return d + "d " + two(h) + "h"; }
    if (h > 0) { return h + "h " + two(m) + "m"; }
    if (m > 0) { return m + "m " + two(s % 60) + "s"; }
    return (s % 60) + "s";
  }

  // Times in the browser's zone; the title keeps the UTC time.
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d.getTime())) { t.textContent = d.toLocaleString(); }
    });
  }

  // Countdowns: amber in the last 15 minutes, red and "overdue" after.
  // onOverdue, when set, is called when a countdown passes its deadline:
  // the list refreshes, and its state column says "overdue" too.
  var onOverdue = null;
  function tick() {
    var now = Date.now() + skew;
    var crossed = false;
    document.querySelectorAll("[data-deadline-ms]").forEach(function (el) {
      var left = (Number(el.getAttribute("data-deadline-ms")) - now) / 1000;
      var was = el.classList.contains("overdue");
      el.classList.remove("due", "due-soon", "overdue");
      if (left < 0 && !was) { crossed = true; }
      if (left < 0) {
        el.textContent = "overdue by " + fmtDur(-left);
        el.classList.add("overdue");
      } else {
        el.textContent = fmtDur(left) + " left";
        el.classList.add(left < 900 ? "due-soon" : "due");
      }
    });
    if (crossed && onOverdue) { onOverdue(); }
  }

  localTimes(document);
  tick();
  setInterval(tick, 1000);

  // A button or form with data-confirm asks first.
  document.addEventListener("submit", function (ev) {
    var src = ev.submitter && ev.submitter.hasAttribute("data-confirm") ? ev.submitter : ev.target;
    var msg = src.getAttribute && src.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) { ev.preventDefault(); }
  });

  var status = document.querySelector("[data-live-status]");
  function say(text) { if (status) { status.textContent = text; } }

  // A list of notices refreshes itself when the node says something changed.
  var list = document.getElementById("list");
  if (list && window.EventSource) {
    var busy = false, again = false;
    var refresh = function () {
      if (busy) { again = true; return; }
      busy = true;
      fetch(list.getAttribute("data-refresh"), { credentials: "same-origin", cache: "no-store" })
        .then(function (r) {
          if (!r.ok) { throw new Error("HTTP " + r.status); }
          return r.text();
        })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.getElementById("list");
          if (fresh) {
            var adopted = document.importNode(fresh, true);
            list.replaceWith(adopted);
            list = adopted;
            localTimes(list);
            tick();
          }
        })
        .catch(function (e) { say("Could not refresh the list: " + e.message); })
        .finally(function () {
          busy = false;
          if (again) { again = false; refresh(); }
        });
    };
    onOverdue = refresh;
    var es = new EventSource("/events");
    es.onopen = function () { say("Live: changes appear here as they arrive."); refresh(); };
    es.onerror = function () { say("Connection to the node lost; reconnecting…"); };
    ["notice", "notice-update", "reply"].forEach(function (t) { es.addEventListener(t, refresh); });
  }

  // The live feed.
  var feed = document.querySelector("[data-feed]");
  if (feed && window.EventSource) {
    var kinds = { "attestation": "attestation", "notice": "notice", "notice-update": "notice", "reply": "reply",
      "amendment": "member", "approval": "member", "member-key": "member", "member-peer": "member" };
    var shown = {};
    var filters = document.querySelectorAll("[data-filter]");
    var apply = function () {
      filters.forEach(function (f) { shown[f.getAttribute("data-filter")] = f.checked; });
      feed.querySelectorAll("li[data-kind]").forEach(function (li) { li.hidden = !shown[li.getAttribute("data-kind")]; });
    };
    filters.forEach(function (f) { f.addEventListener("change", apply); });
    apply();
    var add = function (ev) {
      var e;
      try { e = JSON.parse(ev.data); } catch (err) { return; }
      var li = document.createElement("li");
      li.setAttribute("data-kind", kinds[ev.type] || "other");
      var when = document.createElement("time");
      var now = new Date();
      when.setAttribute("datetime", now.toISOString());
      when.title = now.toISOString();
      when.textContent = now.toLocaleTimeString();
      var what = document.createElement("strong");
      what.textContent = ev.type;
      li.append(when, " ", what, " by " + (e.author || "?") + ": ");
      var detail = "";
      if (e.notice) {
        detail = "notice " + e.notice.id.slice(0, 12) + " from " + e.notice.from + " to " + e.notice.to + ", " + e.notice.state;
      } else if (e.signals) {
        detail = e.signals.join(", ") + (e.labels ? " [" + e.labels.join(", ") + "]" : "");
      } else if (e.change) {
        detail = e.change;
      } else if (e.proposal) {
        detail = "approved " + e.proposal.slice(0, 12);
      } else if (e.peer_id) {
        detail = "new peer " + e.peer_id;
      }
      li.append(detail);
      li.hidden = !shown[li.getAttribute("data-kind")];
      feed.prepend(li);
      while (feed.children.length > 500) { feed.lastElementChild.remove(); }
    };
    var feedES = new EventSource("/events");
    feedES.onopen = function () { say("Live: connected to the node."); };
    feedES.onerror = function () { say("Connection to the node lost; reconnecting…"); };
    Object.keys(kinds).forEach(function (t) { feedES.addEventListener(t, add); });
  }
})();
