// The portal's certificate page, cryptographic part (no page logic): a small DER encoder and
// reader, SHA-256 in plain JavaScript (for the PKCS#12 MAC key's 600000 iterations, where
// WebCrypto's asynchronous digest per round is far too slow), the PKCS#10 request, the key
// store in IndexedDB and the PKCS#12 (.p12) builder. Everything secret stays in this
// browser; only the certificate request leaves it. Exposed as window.TandemPki.
(function () {
  "use strict";

  // ---- bytes ----------------------------------------------------------------------------
  function concat(parts) {
    var n = 0, i;
    for (i = 0; i < parts.length; i += 1) { n += parts[i].length; }
    var out = new Uint8Array(n), off = 0;
    for (i = 0; i < parts.length; i += 1) { out.set(parts[i], off); off += parts[i].length; }
    return out;
  }
  function utf8(s) { return new TextEncoder().encode(s); }
  function hex(b) {
    var s = "";
    for (var i = 0; i < b.length; i += 1) { s += (b[i] < 16 ? "0" : "") + b[i].toString(16); }
    return s;
  }
  function b64(b) {
    var s = "";
    for (var i = 0; i < b.length; i += 0x8000) {
      s += String.fromCharCode.apply(null, b.subarray(i, i + 0x8000));
    }
    return btoa(s);
  }
  function unb64(s) {
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i += 1) { out[i] = bin.charCodeAt(i); }
    return out;
  }
  function random(n) { return crypto.getRandomValues(new Uint8Array(n)); }

  // ---- DER encoder ----------------------------------------------------------------------
  function tlv(tag, content) {
    var len = content.length, head;
    if (len < 0x80) {
      head = [tag, len];
    } else {
      var l = [];
      while (len > 0) { l.unshift(len & 0xff); len = Math.floor(len / 256); }
      head = [tag, 0x80 | l.length].concat(l);
    }
    return concat([new Uint8Array(head), content]);
  }
  function seq() { return tlv(0x30, concat(Array.prototype.slice.call(arguments))); }
  // SET OF in DER order: the encodings sorted as octet strings.
  function setOf(items) {
    var sorted = items.slice().sort(function (a, b) {
      var n = Math.max(a.length, b.length);
      for (var i = 0; i < n; i += 1) {
        var x = i < a.length ? a[i] : 0, y = i < b.length ? b[i] : 0;
        if (x !== y) { return x - y; }
      }
      return 0;
    });
    return tlv(0x31, concat(sorted));
  }
  function intBytes(b) {
    var i = 0;
    while (i < b.length - 1 && b[i] === 0 && b[i + 1] < 0x80) { i += 1; }
    b = b.subarray(i);
    if (b[0] >= 0x80) { b = concat([new Uint8Array([0]), b]); }
    return tlv(0x02, b);
  }
  function int(n) {
    var b = [];
    do { b.unshift(n & 0xff); n = Math.floor(n / 256); } while (n > 0);
    return intBytes(new Uint8Array(b));
  }
  function oid(dotted) {
    var p = dotted.split(".").map(Number), out = [p[0] * 40 + p[1]];
    for (var i = 2; i < p.length; i += 1) {
      var v = p[i], enc = [v & 0x7f];
      v = Math.floor(v / 128);
      while (v > 0) { enc.unshift(0x80 | (v & 0x7f)); v = Math.floor(v / 128); }
      out = out.concat(enc);
    }
    return tlv(0x06, new Uint8Array(out));
  }
  var NULL = new Uint8Array([0x05, 0x00]);
  function octets(b) { return tlv(0x04, b); }
  function bits(b) { return tlv(0x03, concat([new Uint8Array([0]), b])); }
  function utf8String(s) { return tlv(0x0c, utf8(s)); }
  // BMPString: UTF-16 big-endian (characters outside the BMP as surrogate pairs).
  function bmpBytes(s) {
    var out = new Uint8Array(s.length * 2);
    for (var i = 0; i < s.length; i += 1) {
      var c = s.charCodeAt(i);
      out[2 * i] = c >> 8; out[2 * i + 1] = c & 0xff;
    }
    return out;
  }
  function explicit(n, content) { return tlv(0xa0 | n, content); }

  // ---- DER reader (only what finding a certificate's public key needs) -------------------
  function read(b, off) {
    if (off + 2 > b.length) { throw new Error("DER: truncated"); }
    var tag = b[off], l = b[off + 1], p = off + 2, len;
    if ((tag & 0x1f) === 0x1f) { throw new Error("DER: long tags are not supported"); }
    if (l < 0x80) {
      len = l;
    } else {
      var k = l & 0x7f;
      if (k === 0 || k > 4) { throw new Error("DER: bad length"); }
      len = 0;
      for (var i = 0; i < k; i += 1) {
        if (p >= b.length) { throw new Error("DER: truncated"); }
        len = len * 256 + b[p]; p += 1;
      }
    }
    if (p + len > b.length) { throw new Error("DER: truncated"); }
    return { tag: tag, start: off, body: p, end: p + len };
  }
  function children(b, node) {
    var out = [], p = node.body;
    while (p < node.end) { var c = read(b, p); out.push(c); p = c.end; }
    if (p !== node.end) { throw new Error("DER: bad structure"); }
    return out;
  }
  // The SubjectPublicKeyInfo (DER) of an X.509 certificate (DER).
  function certSpki(der) {
    var cert = read(der, 0);
    if (cert.tag !== 0x30 || cert.end !== der.length) { throw new Error("not a certificate"); }
    var tbs = children(der, cert)[0];
    if (!tbs || tbs.tag !== 0x30) { throw new Error("not a certificate"); }
    var f = children(der, tbs), i = f.length > 0 && f[0].tag === 0xa0 ? 1 : 0;
    var spki = f[i + 5];
    if (!spki || spki.tag !== 0x30) { throw new Error("not a certificate"); }
    return der.slice(spki.start, spki.end);
  }

  // ---- SHA-256 in plain JavaScript -------------------------------------------------------
  var K = new Int32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
  ]);
  var H0 = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];

  // One compression: H (8 words) updated with W[0..16] (W has room for 64 words).
  function compress(H, W) {
    var i, t1, t2, x, y;
    for (i = 16; i < 64; i += 1) {
      x = W[i - 15]; y = W[i - 2];
      W[i] = (((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3)) +
        W[i - 7] + (((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10)) +
        W[i - 16] | 0;
    }
    var a = H[0], b = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7];
    for (i = 0; i < 64; i += 1) {
      t1 = h + (((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7))) +
        ((e & f) ^ (~e & g)) + K[i] + W[i] | 0;
      t2 = (((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10))) +
        ((a & b) ^ (a & c) ^ (b & c)) | 0;
      h = g; g = f; f = e; e = d + t1 | 0; d = c; c = b; b = a; a = t1 + t2 | 0;
    }
    H[0] = H[0] + a | 0; H[1] = H[1] + b | 0; H[2] = H[2] + c | 0; H[3] = H[3] + d | 0;
    H[4] = H[4] + e | 0; H[5] = H[5] + f | 0; H[6] = H[6] + g | 0; H[7] = H[7] + h | 0;
  }
  function words(H) {
    var out = new Uint8Array(32);
    for (var i = 0; i < 8; i += 1) {
      out[4 * i] = H[i] >>> 24; out[4 * i + 1] = H[i] >>> 16;
      out[4 * i + 2] = H[i] >>> 8; out[4 * i + 3] = H[i];
    }
    return out;
  }
  function sha256(msg) {
    var bitLen = msg.length * 8, padded = Math.ceil((msg.length + 9) / 64) * 64;
    var m = new Uint8Array(padded);
    m.set(msg); m[msg.length] = 0x80;
    var hi = Math.floor(bitLen / 0x100000000), lo = bitLen >>> 0;
    m[padded - 8] = hi >>> 24; m[padded - 7] = hi >>> 16; m[padded - 6] = hi >>> 8;
    m[padded - 5] = hi; m[padded - 4] = lo >>> 24; m[padded - 3] = lo >>> 16;
    m[padded - 2] = lo >>> 8; m[padded - 1] = lo;
    var H = new Int32Array(H0), W = new Int32Array(64);
    for (var off = 0; off < padded; off += 64) {
      for (var i = 0; i < 16; i += 1) {
        var p = off + 4 * i;
        W[i] = (m[p] << 24) | (m[p + 1] << 16) | (m[p + 2] << 8) | m[p + 3];
      }
      compress(H, W);
    }
    return words(H);
  }
  // SHA-256 applied `rounds` more times to a 32-byte digest (one block each).
  function sha256Repeat(digest, rounds) {
    var H = new Int32Array(8), W = new Int32Array(64), i, r;
    for (i = 0; i < 8; i += 1) {
      H[i] = (digest[4 * i] << 24) | (digest[4 * i + 1] << 16) |
        (digest[4 * i + 2] << 8) | digest[4 * i + 3];
    }
    for (r = 0; r < rounds; r += 1) {
      for (i = 0; i < 8; i += 1) { W[i] = H[i]; H[i] = H0[i]; }
      W[8] = 0x80000000 | 0;
      for (i = 9; i < 15; i += 1) { W[i] = 0; }
      W[15] = 256;
      compress(H, W);
    }
    return words(H);
  }

  // RFC 7292 Appendix B.2 with SHA-256 (u = 32, v = 64), for a key of at most 32 bytes.
  // The password is the BMPString with two zero bytes at the end.
  function pkcs12Kdf(password, salt, id, iterations, n) {
    var v = 64, i;
    var pw = concat([bmpBytes(password), new Uint8Array(2)]);
    var D = new Uint8Array(v).fill(id);
    function stretch(x) {
      var out = new Uint8Array(v * Math.ceil(x.length / v));
      for (i = 0; i < out.length; i += 1) { out[i] = x[i % x.length]; }
      return out;
    }
    var I = concat([stretch(salt), stretch(pw)]);
    var A = sha256Repeat(sha256(concat([D, I])), iterations - 1);
    pw.fill(0); I.fill(0);
    return A.slice(0, n);
  }

  // ---- the key pair and the request ------------------------------------------------------
  var RSA = {
    name: "RSASSA-PKCS1-v1_5", modulusLength: 2048,
    publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256"
  };
  var OID = {
    cn: "2.5.4.3", sha256Rsa: "1.2.840.113549.1.1.11", sha256: "2.16.840.1.101.3.4.2.1",
    data: "1.2.840.113549.1.7.1", pbes2: "1.2.840.113549.1.5.13",
    pbkdf2: "1.2.840.113549.1.5.12", hmacSha256: "1.2.840.113549.2.9",
    aes256Cbc: "2.16.840.1.101.3.4.1.42", keyBag: "1.2.840.113549.1.12.10.1.2",
    certBag: "1.2.840.113549.1.12.10.1.3", x509Cert: "1.2.840.113549.1.9.22.1",
    friendlyName: "1.2.840.113549.1.9.20", localKeyId: "1.2.840.113549.1.9.21"
  };

  function generateKeyPair() {
    return crypto.subtle.generateKey(RSA, true, ["sign", "verify"]);
  }
  function spkiOf(keys) {
    return crypto.subtle.exportKey("spki", keys.publicKey).then(function (b) {
      return new Uint8Array(b);
    });
  }
  // Hex of the SHA-256 of an SPKI: the key's name in the store.
  function keyId(spki) {
    return crypto.subtle.digest("SHA-256", spki).then(function (d) {
      return hex(new Uint8Array(d));
    });
  }
  // PKCS#10 with subject CN=label, no attributes, signed with SHA-256 (proof of possession).
  function buildCsr(keys, label) {
    return spkiOf(keys).then(function (spki) {
      var name = seq(setOf([seq(oid(OID.cn), utf8String(label))]));
      var info = seq(int(0), name, spki, tlv(0xa0, new Uint8Array(0)));
      return crypto.subtle.sign(RSA.name, keys.privateKey, info).then(function (sig) {
        return seq(info, seq(oid(OID.sha256Rsa), NULL), bits(new Uint8Array(sig)));
      });
    });
  }

  // ---- the key store (IndexedDB) ---------------------------------------------------------
  var DB = "tandem-rp-keys", STORE = "keys";
  function openDb() {
    return new Promise(function (resolve, reject) {
      var r = indexedDB.open(DB, 1);
      r.onupgradeneeded = function () { r.result.createObjectStore(STORE); };
      r.onsuccess = function () { resolve(r.result); };
      r.onerror = function () { reject(r.error); };
    });
  }
  function tx(mode, f) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var t = db.transaction(STORE, mode), out;
        t.oncomplete = function () { db.close(); resolve(out); };
        t.onerror = t.onabort = function () { db.close(); reject(t.error); };
        var r = f(t.objectStore(STORE));
        if (r) { r.onsuccess = function () { out = r.result; }; }
      });
    });
  }
  // Stores the pair under the SHA-256 of its SPKI; answers that id.
  function storeKeys(keys) {
    return spkiOf(keys).then(keyId).then(function (id) {
      return tx("readwrite", function (s) {
        return s.put({ privateKey: keys.privateKey, publicKey: keys.publicKey,
          stored: new Date().toISOString() }, id);
      }).then(function () { return id; });
    });
  }
  // The pair whose public key the certificate (DER) carries, or null.
  function findKeys(certDer) {
    return keyId(certSpki(certDer)).then(function (id) {
      return tx("readonly", function (s) { return s.get(id); });
    }).then(function (v) { return v || null; });
  }
  // A new pair, stored before anything is sent, and its request (DER).
  function newRequest(label) {
    return generateKeyPair().then(function (keys) {
      return storeKeys(keys).then(function () { return buildCsr(keys, label); });
    });
  }

  // ---- PKCS#12 ---------------------------------------------------------------------------
  var ITERATIONS = 600000;

  function attribute(type, value) { return seq(oid(type), setOf([value])); }

  // EncryptedPrivateKeyInfo: PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC) of the PKCS#8 key.
  function shroud(pkcs8, password, iterations) {
    var salt = random(16), iv = random(16);
    return crypto.subtle.importKey("raw", utf8(password), "PBKDF2", false, ["deriveBits"])
      .then(function (pw) {
        return crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt: salt,
          iterations: iterations }, pw, 256);
      })
      .then(function (kb) {
        return crypto.subtle.importKey("raw", kb, "AES-CBC", false, ["encrypt"]);
      })
      .then(function (k) { return crypto.subtle.encrypt({ name: "AES-CBC", iv: iv }, k, pkcs8); })
      .then(function (ct) {
        var alg = seq(oid(OID.pbes2), seq(
          seq(oid(OID.pbkdf2), seq(octets(salt), int(iterations), seq(oid(OID.hmacSha256), NULL))),
          seq(oid(OID.aes256Cbc), octets(iv))));
        return seq(alg, octets(new Uint8Array(ct)));
      });
  }

  // The .p12: `keys` (a WebCrypto pair, extractable), the certificate and its chain (DER
  // each), a friendly name, the password. `progress(step)` is told "key", "mac", "done".
  function buildP12(keys, certDer, chainDers, friendlyName, password, progress, iterations) {
    var iter = iterations || ITERATIONS, note = progress || function () {};
    var localKeyId;
    note("key");
    return spkiOf(keys).then(function (spki) {
      return crypto.subtle.digest("SHA-256", spki);
    }).then(function (d) {
      localKeyId = new Uint8Array(d);
      return crypto.subtle.exportKey("pkcs8", keys.privateKey);
    }).then(function (pkcs8) {
      var plain = new Uint8Array(pkcs8);
      return shroud(plain, password, iter).then(function (epki) {
        plain.fill(0);
        return epki;
      });
    }).then(function (epki) {
      var attrs = setOf([attribute(OID.friendlyName, tlv(0x1e, bmpBytes(friendlyName))),
        attribute(OID.localKeyId, octets(localKeyId))]);
      var keyBag = seq(oid(OID.keyBag), explicit(0, epki), attrs);
      var certBag = function (der, withAttrs) {
        var v = explicit(0, seq(oid(OID.x509Cert), explicit(0, octets(der))));
        return withAttrs ? seq(oid(OID.certBag), v, attrs) : seq(oid(OID.certBag), v);
      };
      var certs = [certBag(certDer, true)];
      for (var i = 0; i < chainDers.length; i += 1) { certs.push(certBag(chainDers[i], false)); }
      var data = function (content) { return seq(oid(OID.data), explicit(0, octets(content))); };
      var authSafe = seq(data(seq.apply(null, certs)), data(seq(keyBag)));
      note("mac");
      // Let the page show the progress text before the long loop.
      return new Promise(function (r) { setTimeout(r, 20); }).then(function () {
        var salt = random(16);
        var macKey = pkcs12Kdf(password, salt, 3, iter, 32);
        return crypto.subtle.importKey("raw", macKey, { name: "HMAC", hash: "SHA-256" },
          false, ["sign"]).then(function (k) {
          macKey.fill(0);
          return crypto.subtle.sign("HMAC", k, authSafe);
        }).then(function (mac) {
          var macData = seq(seq(seq(oid(OID.sha256), NULL), octets(new Uint8Array(mac))),
            octets(salt), int(iter));
          note("done");
          return seq(int(3), data(authSafe), macData);
        });
      });
    });
  }

  window.TandemPki = {
    concat: concat, hex: hex, b64: b64, unb64: unb64, sha256: sha256, sha256Repeat: sha256Repeat,
    pkcs12Kdf: pkcs12Kdf, certSpki: certSpki, generateKeyPair: generateKeyPair,
    buildCsr: buildCsr, storeKeys: storeKeys, findKeys: findKeys, newRequest: newRequest,
    buildP12: buildP12, ITERATIONS: ITERATIONS
  };
})();
