// The home page's "Sending now" card: its figures refresh every few seconds
// from the progress endpoint (campaigns.admin.home.progress_view).
(function () {
  "use strict";
  const EVERY_MS = 5000;
  const card = document.getElementById("running-module");
  if (!card) return;
  const url = card.dataset.progressUrl;

  function bar(segments) {
    const frag = document.createDocumentFragment();
    segments.forEach(function (s) {
      const span = document.createElement("span");
      span.className = "seg seg-" + s.key;
      span.style.width = s.width + "%";
      span.title = s.label;
      frag.appendChild(span);
    });
    return frag;
  }

  function apply(data) {
    data.campaigns.forEach(function (c) {
      const row = card.querySelector('[data-campaign="' + c.id + '"]');
      if (!row) return;
      row.querySelector('[data-field="percent"]').textContent = c.percent + "%";
      row.querySelector('[data-field="summary"]').textContent = c.summary;
      const b = row.querySelector('[data-field="bar"]');
      b.replaceChildren(bar(c.segments));
      row.dataset.updated = data.at;
    });
    card.dataset.refreshed = data.at;
  }

  function poll() {
    if (document.hidden) {  // a background tab asks nothing
      setTimeout(poll, EVERY_MS);
      return;
    }
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) apply(data); })
      .catch(function () {})
      .finally(function () { setTimeout(poll, EVERY_MS); });
  }
  setTimeout(poll, EVERY_MS);
})();
