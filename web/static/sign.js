// Demo Bank document signature: follows the signature by long-polling /bank/sign/status
// (cookie-bound; the answer comes as soon as it ends, or after about 25 s with "waiting").
(function () {
  "use strict";
  if (!document.getElementById("signing")) { return; }
  var status = document.getElementById("status");
  var failures = 0;
  function poll() {
    fetch("/bank/sign/status", { credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (!r.ok) { throw new Error("HTTP " + r.status); }
        return r.json();
      })
      .then(function (s) {
        failures = 0;
        if (s.message && status) { status.textContent = s.message; }
        if (s.next) { window.location.assign(s.next); return; }
        poll();
      })
      .catch(function () {
        failures += 1;
        setTimeout(poll, Math.min(30000, 1000 * failures));
      });
  }
  poll();
})();
