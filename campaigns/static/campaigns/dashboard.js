// The delivery dashboard's live figures: polls the campaign's live endpoint
// and updates the counters, the progress bar and both charts (server-drawn
// SVG) in place, without reloading the page. Slower once every message has
// an outcome (read reports may still come in); slower again after errors.
(function () {
  "use strict";
  var root = document.getElementById("dashboard");
  if (!root) { return; }
  var url = root.getAttribute("data-live-url");
  var every = parseInt(root.getAttribute("data-poll-ms"), 10) || 3000;
  var liveText = document.getElementById("live-text");
  var liveDot = document.getElementById("live-dot");

  function fmt(n) { return Number(n).toLocaleString("en-US"); }
  function setText(selector, value) {
    var nodes = root.querySelectorAll(selector);
    for (var i = 0; i < nodes.length; i++) { nodes[i].textContent = value; }
  }

  function apply(live) {
    Object.keys(live.counts).forEach(function (key) {
      setText('[data-count="' + key + '"]', fmt(live.counts[key]));
    });
    live.progress.forEach(function (s) {
      var seg = root.querySelector('[data-segment="' + s.key + '"]');
      if (seg) {
        seg.style.width = s.width + "%";
        seg.title = s.label + ": " + fmt(s.count);
      }
      setText('[data-segment-count="' + s.key + '"]', fmt(s.count));
    });
    live.milestones.forEach(function (m) {
      setText('[data-milestone="' + m.key + '"]', fmt(m.count));
      setText('[data-milestone-percent="' + m.key + '"]', m.percent);
    });
    document.getElementById("percent-complete").textContent = live.percent_complete;
    document.getElementById("headline").textContent = live.headline;
    document.getElementById("status-label").textContent = live.status_label;
    document.getElementById("updated").textContent = live.updated;
    document.getElementById("last-receipt").textContent = live.last_receipt;
    document.getElementById("funnel-chart").innerHTML = live.funnel_svg;
    document.getElementById("timeline-chart").innerHTML = live.timeline_svg;
    var stalled = document.getElementById("stalled-warning");
    document.getElementById("stalled-text").textContent = live.stalled;
    stalled.hidden = !live.stalled;
    document.getElementById("failures-body").innerHTML = live.failures_html;
    document.getElementById("batches-body").innerHTML = live.batches_html;
    root.setAttribute("data-complete", live.complete ? "1" : "0");
  }

  function poll() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (live) {
        apply(live);
        liveDot.className = "dash-live";
        var wait = live.complete ? every * 5 : every;
        liveText.textContent = live.complete
          ? "Every message has an outcome; read reports are still updated every " + Math.round(wait / 1000) + " seconds"
          : "Live: updates every " + Math.round(wait / 1000) + " seconds";
        window.setTimeout(poll, wait);
      })
      .catch(function () {
        liveDot.className = "dash-live paused";
        liveText.textContent = "Could not update the figures; trying again";
        window.setTimeout(poll, every * 4);
      });
  }
  window.setTimeout(poll, every);
})();
