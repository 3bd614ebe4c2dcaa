// Polls the pre-send check's status while it runs on the worker, updates the
// progress bar, and reloads the page when the check has finished.
(function () {
  "use strict";
  var box = document.querySelector(".presend-progress");
  if (!box) { return; }
  var url = box.getAttribute("data-status-url");
  var bar = box.querySelector("progress");
  function poll() {
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.json(); })
      .then(function (status) {
        if (!status.running) {
          window.location.reload();
          return;
        }
        box.querySelector(".presend-state").textContent = status.state_label;
        box.querySelector(".presend-checked").textContent = status.checked.toLocaleString();
        if (status.total !== null) {
          box.querySelector(".presend-total").textContent = status.total.toLocaleString();
          bar.max = Math.max(status.total, 1);
        }
        bar.value = status.checked;
        window.setTimeout(poll, 1500);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 1500);
})();
