// The login of every area (Demo Bank, portal): renews the QR code every second and follows
// the login by long-polling /{area}/login/status (cookie-bound; the answer comes as soon as
// the login ends, or after about 25 s with "waiting"). No inline script: the page names its
// URLs in data-status and data-qr.
(function () {
  "use strict";
  var root = document.getElementById("login");
  if (!root) { return; }
  var statusUrl = root.getAttribute("data-status") || "/bank/login/status";
  var qrUrl = root.getAttribute("data-qr") || "/bank/login/qr.png";
  var img = document.getElementById("qr");
  var status = document.getElementById("status");
  if (img) {
    var n = 0;
    setInterval(function () {
      n += 1;
      img.src = qrUrl + "?n=" + n;
    }, 1000);
  }
  var failures = 0;
  function poll() {
    fetch(statusUrl, { credentials: "same-origin", cache: "no-store" })
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
