// The portal's certificate page (/portal/certificates): the create, cancel, revoke and
// download dialogs, the label check (the web process checks again, authoritatively), and the
// poll that refreshes the list while a creation is queued or running. The cryptography is in
// rpcert-pki.js (window.TandemPki). No inline script; every POST carries the CSRF field.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var T = $("rpc-texts");
  if (!T) { return; }
  var tx = function (k) { return T.getAttribute("data-" + k) || ""; };
  var csrf = function () {
    var f = document.querySelector("input[name=csrf]");
    return f ? f.value : "";
  };
  var FORBIDDEN = tx("forbidden"), MAX = Number(tx("max"));

  // The same rule as tandem_rp::api::rp_certs::check_label; answers a message or "".
  function checkLabel(label) {
    var chars = Array.from(label), i, c;
    for (i = 0; i < chars.length; i += 1) {
      c = chars[i];
      if (c === "\t" || FORBIDDEN.indexOf(c) >= 0) {
        return tx("char").replace("{c}", c === "\t" ? tx("tab") : c);
      }
    }
    for (i = 0; i < chars.length; i += 1) {
      if (/[\u0000-\u001f\u007f-\u009f]/.test(chars[i])) { return tx("control"); }
    }
    if (label.trim() === "") { return tx("empty"); }
    if (chars.length > MAX) { return tx("long").replace("{n}", String(chars.length)); }
    return "";
  }
  window.TandemRpCerts = { checkLabel: checkLabel };

  function post(url, fields) {
    var body = new URLSearchParams();
    body.append("csrf", csrf());
    fields.forEach(function (kv) { body.append(kv[0], kv[1]); });
    return fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: { "x-tandem-fetch": "1" }
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) { throw new Error(j.error || (tx("failed") + " HTTP " + r.status)); }
        return j;
      });
    });
  }
  function open(d) { if (!d.open) { d.showModal(); } }
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest ? ev.target.closest("dialog .close") : null;
    if (b) { b.closest("dialog").close(); }
  });

  // ---- refresh: the list part of the page, while something is pending -------------------
  var polls = 0, timer = null;
  function refresh() {
    return fetch("/portal/certificates", { credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("rp-certs"), old = $("rp-certs");
        if (fresh && old) { old.replaceWith(document.adoptNode(fresh)); }
        localTimes();
        schedule();
      });
  }
  function schedule() {
    var box = $("rp-certs");
    if (timer || !box || box.getAttribute("data-pending") !== "1" || polls >= 900) { return; }
    timer = setTimeout(function () {
      timer = null; polls += 1;
      fetch("/portal/certificates/state", { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (s) {
          var now = $("rp-certs");
          if (!now) { return; }
          if (!s) { return schedule(); } // the server may be restarting: keep asking (bounded)
          if (s.sig !== now.getAttribute("data-sig")) { return refresh(); }
          if (s.pending) { schedule(); }
        })
        .catch(function () { schedule(); });
    }, 1500);
  }
  function localTimes() {
    var lang = document.documentElement.lang || "en";
    document.querySelectorAll("#rp-certs time[data-local]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (isNaN(d.getTime())) { return; }
      t.title = t.textContent;
      t.textContent = d.toLocaleDateString(lang, { year: "numeric", month: "2-digit", day: "2-digit" });
    });
  }
  localTimes();
  schedule();

  // ---- create ----------------------------------------------------------------------------
  var createRp = null;
  function addRow() {
    var rows = $("create-rows"), n = rows.children.length + 1;
    var div = document.createElement("div"), lab = document.createElement("label");
    var input = document.createElement("input"), err = document.createElement("p");
    div.className = "create-row";
    input.type = "text"; input.className = "label-input"; input.name = "label";
    input.id = "label-" + n; input.autocomplete = "off";
    err.className = "error row-error"; err.id = "label-error-" + n;
    input.setAttribute("aria-describedby", err.id);
    lab.htmlFor = input.id;
    lab.textContent = tx("label") + " " + n;
    input.addEventListener("input", function () {
      err.textContent = checkLabel(input.value);
      $("create-error").textContent = ""; // the summary of the last attempt is stale now
    });
    div.appendChild(lab); div.appendChild(input); div.appendChild(err);
    rows.appendChild(div);
    input.focus();
  }
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest ? ev.target.closest("button.create-open") : null;
    if (!b) { return; }
    createRp = b.getAttribute("data-rp");
    $("create-rows").textContent = "";
    $("create-error").textContent = ""; $("create-progress").textContent = "";
    $("create-all").disabled = false;
    open($("create-dialog"));
    addRow();
  });
  $("add-row").addEventListener("click", addRow);
  $("create-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var inputs = Array.from(document.querySelectorAll("#create-rows input.label-input"));
    var bad = false;
    inputs.forEach(function (i) {
      var m = checkLabel(i.value);
      $(i.getAttribute("aria-describedby")).textContent = m;
      i.setAttribute("aria-invalid", m ? "true" : "false");
      if (m && !bad) { bad = true; i.focus(); }
    });
    $("create-error").textContent = bad ? inputs.map(function (i) {
      return checkLabel(i.value);
    }).filter(Boolean)[0] : "";
    if (bad || inputs.length === 0) { return; }
    var P = window.TandemPki, labels = inputs.map(function (i) { return i.value; });
    $("create-all").disabled = true;
    $("create-progress").textContent = tx("working");
    // One key after the other: each is stored in IndexedDB before its request is sent.
    var csrs = [];
    labels.reduce(function (p, l) {
      return p.then(function () { return P.newRequest(l); }).then(function (der) {
        csrs.push(P.b64(der));
      });
    }, Promise.resolve()).then(function () {
      var fields = [["rp", createRp]];
      labels.forEach(function (l, i) { fields.push(["label", l]); fields.push(["csr", csrs[i]]); });
      return post("/portal/certificates/create", fields);
    }).then(function () {
      $("create-dialog").close();
      return refresh();
    }).catch(function (e) {
      $("create-progress").textContent = "";
      $("create-error").textContent = e.message;
      $("create-all").disabled = false;
    });
  });

  // ---- cancel (dialog, then the voucher) and revoke (dialog, then the plain form) -------
  var pendingForm = null;
  document.addEventListener("submit", function (ev) {
    var f = ev.target;
    if (f.classList.contains("cancel")) {
      ev.preventDefault(); pendingForm = f;
      $("cancel-result").hidden = true; $("cancel-error").textContent = "";
      $("cancel-yes").hidden = false; $("cancel-q").hidden = false;
      open($("cancel-dialog"));
    } else if (f.classList.contains("revoke")) {
      ev.preventDefault(); pendingForm = f;
      open($("revoke-dialog"));
    }
  });
  $("cancel-yes").addEventListener("click", function () {
    var f = pendingForm;
    if (!f) { return; }
    $("cancel-yes").hidden = true;
    post("/portal/certificates/cancel", [["rp", f.elements.rp.value], ["id", f.elements.id.value]])
      .then(function (j) {
        $("cancel-q").hidden = true;
        $("voucher-code").textContent = j.voucher;
        $("cancel-result").hidden = false;
        return refresh();
      }).catch(function (e) {
        $("cancel-error").textContent = e.message;
        $("cancel-yes").hidden = false;
      });
  });
  $("revoke-yes").addEventListener("click", function () {
    if (pendingForm) { pendingForm.submit(); }
  });

  // ---- download: password twice, the .p12 built here --------------------------------------
  var dl = null;
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest ? ev.target.closest("button.download") : null;
    if (!b) { return; }
    dl = { rp: b.getAttribute("data-rp"), id: b.getAttribute("data-id") };
    $("download-label").textContent = b.getAttribute("data-label");
    $("pw1").value = ""; $("pw2").value = "";
    $("download-error").textContent = ""; $("download-progress").textContent = "";
    $("download-go").disabled = false;
    open($("download-dialog"));
    $("pw1").focus();
  });
  $("download-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var pw = $("pw1").value, err = $("download-error");
    if (Array.from(pw).length < 6) { err.textContent = tx("pw-short"); return; }
    if (pw !== $("pw2").value) { err.textContent = tx("pw-mismatch"); return; }
    err.textContent = "";
    $("download-go").disabled = true;
    $("download-progress").textContent = tx("building");
    var P = window.TandemPki, info, cert;
    fetch("/portal/certificates/download?rp=" + encodeURIComponent(dl.rp) + "&id=" +
      encodeURIComponent(dl.id), { credentials: "same-origin" })
      .then(function (r) {
        return r.json().then(function (j) {
          if (!r.ok) { throw new Error(j.error || tx("failed")); }
          return j;
        });
      }).then(function (j) {
        info = j; cert = P.unb64(j.der);
        return P.findKeys(cert);
      }).then(function (keys) {
        if (!keys) { throw new Error(tx("no-key")); }
        return P.buildP12(keys, cert, info.chain.map(P.unb64), info.label, pw);
      }).then(function (p12) {
        var url = URL.createObjectURL(new Blob([p12], { type: "application/x-pkcs12" }));
        var a = document.createElement("a");
        a.href = url; a.download = info.fileName; a.id = "p12-link";
        document.body.appendChild(a); a.click();
        setTimeout(function () { URL.revokeObjectURL(url); a.remove(); }, 60000);
        $("pw1").value = ""; $("pw2").value = "";
        $("download-progress").textContent = tx("saved");
      }).catch(function (e) {
        $("download-progress").textContent = "";
        err.textContent = e.message;
        $("download-go").disabled = false;
      });
  });
})();
