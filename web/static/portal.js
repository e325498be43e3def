// The portal: shows every <time datetime=… data-local> in the browser's local time (the
// page carries UTC; without JavaScript it stays UTC). No inline script.
(function () {
  "use strict";
  var lang = document.documentElement.lang || "en";
  var times = document.querySelectorAll("time[data-local]");
  for (var i = 0; i < times.length; i += 1) {
    var t = times[i];
    var d = new Date(t.getAttribute("datetime"));
    if (isNaN(d.getTime())) { continue; }
    t.title = t.textContent;
    t.textContent = d.toLocaleString(lang, {
      year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
    });
  }
})();
