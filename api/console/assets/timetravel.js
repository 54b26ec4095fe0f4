// seatledger console: the time-travel debugger's cursor, without reloading
// the page. The page works without this file (links and GET forms); this
// makes the cursor move on arrow keys and drags by fetching the server-
// rendered fragment of the state at the new cursor and swapping it in.
// Only the last cursor's answer is painted: an older fetch is aborted.
(function () {
  "use strict";
  var root = document.getElementById("tt");
  if (!root || !window.fetch) return;
  var base = root.getAttribute("data-base");
  var range = document.getElementById("tt-cursor");
  var pos = document.getElementById("tt-pos");
  var live = document.getElementById("tt-live");
  var blame = document.getElementById("tt-blame");
  var inflight = null; // AbortController of the fetch under way
  var wanted = 0;      // the cursor whose answer is awaited
  var pressedAt = 0;   // the key press (or drag) that asked for it

  function state() { return document.getElementById("tt-state"); }
  function num(el, name) { return parseInt(el.getAttribute(name), 10) || 0; }
  function head() { return parseInt(range.max, 10) || 1; }
  function cmp() { return state().getAttribute("data-cmp") || ""; }

  function pageURL(v, extra) {
    var q = "?v=" + v;
    if (cmp()) q += "&cmp=" + encodeURIComponent(cmp());
    return base + q + (extra || "");
  }

  // move puts the cursor on v: the range shows it at once, the state once
  // the server answers (if v is still the cursor then).
  function move(v, at) {
    v = Math.max(1, Math.min(head(), v));
    if (v === wanted || (v === num(state(), "data-version") && !inflight)) return;
    wanted = v;
    pressedAt = at || performance.now();
    range.value = v;
    pos.textContent = v + " / " + head();
    if (inflight) inflight.abort();
    var ctl = new AbortController();
    inflight = ctl;
    var url = pageURL(v);
    fetch(base + "/fragment" + url.slice(base.length), { signal: ctl.signal, credentials: "same-origin" })
      .then(function (res) {
        if (!res.ok) throw new Error("status " + res.status);
        return res.text();
      })
      .then(function (html) {
        if (ctl !== inflight) return; // a later cursor is awaited
        inflight = null;
        live.innerHTML = html;
        blame.innerHTML = "";
        var hidden = document.querySelectorAll("input[type=hidden][name=v]");
        for (var i = 0; i < hidden.length; i++) hidden[i].value = v;
        range.setAttribute("aria-valuetext", state().getAttribute("data-valuetext"));
        var at = document.getElementById("tt-at");
        if (at) at.value = state().getAttribute("data-at");
        history.replaceState(null, "", url);
        var start = pressedAt;
        requestAnimationFrame(function () {
          setTimeout(function () {
            // Key press (or drag) to the new state painted, for the
            // console's browser benchmark (docs/BENCHMARKS.md).
            performance.measure("tt-step", { start: start, end: performance.now(), detail: v });
          }, 0);
        });
      })
      .catch(function (err) {
        if (err.name === "AbortError") return;
        location.assign(url); // let the page show what went wrong
      });
  }

  function target(key, shift) {
    var s = state(), v = num(s, "data-version");
    switch (key) {
      case "ArrowLeft": return shift ? (num(s, "data-prev-cmd") || 1) : v - 1;
      case "ArrowRight": return shift ? (num(s, "data-next-cmd") || v + 1) : v + 1;
      case "PageUp": return v - 10;
      case "PageDown": return v + 10;
      case "Home": return 1;
      case "End": return head();
    }
    return 0;
  }

  document.addEventListener("keydown", function (e) {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    var t = e.target;
    if (t !== range && t.closest && t.closest("input, textarea, select, [contenteditable]")) return;
    if ((e.key === "Home" || e.key === "End" || e.key === "PageUp" || e.key === "PageDown") && t !== range && t !== document.body) return;
    var to = target(e.key, e.shiftKey);
    if (!to) return;
    e.preventDefault();
    // While an answer is awaited, steps count from the awaited cursor:
    // five quick presses move five events.
    if (wanted && inflight && (e.key === "ArrowLeft" || e.key === "ArrowRight") && !e.shiftKey) {
      to = wanted + (e.key === "ArrowLeft" ? -1 : 1);
    }
    move(to, e.timeStamp);
  });

  range.addEventListener("input", function (e) { move(parseInt(range.value, 10), e.timeStamp); });

  // Links that move the cursor (timeline, steps) move it in place.
  live.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest("a[data-v]");
    if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    move(parseInt(a.getAttribute("data-v"), 10), e.timeStamp);
  });

  // Blame opens beside the state.
  root.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest("a.blame");
    if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    var u = new URL(a.href);
    var v = u.searchParams.get("v"), path = u.searchParams.get("blame");
    fetch(base + "/blame?v=" + encodeURIComponent(v) + "&path=" + encodeURIComponent(path), { credentials: "same-origin" })
      .then(function (res) {
        if (!res.ok) throw new Error("status " + res.status);
        return res.text();
      })
      .then(function (html) {
        blame.innerHTML = html;
        history.replaceState(null, "", u.pathname + u.search);
        blame.focus();
      })
      .catch(function () { location.assign(a.href); });
  });
})();
