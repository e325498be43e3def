#!/usr/bin/env bash
# Installs the system packages that the demo and the tests need (Debian/Ubuntu).
# Idempotent: does nothing when everything is present.
set -euo pipefail
# `--demo`: only what the demo needs (it runs on hsm-sim): OpenSSL and the build's libssl.
demo=false
[ "${1:-}" = "--demo" ] && demo=true
need=()
if ! $demo; then
  command -v softhsm2-util >/dev/null 2>&1 || need+=(softhsm2)
  command -v pkcs11-tool   >/dev/null 2>&1 || need+=(opensc)
fi
command -v openssl       >/dev/null 2>&1 || need+=(openssl)
# The benchmarks link OpenSSL (reference figures); they are built with --all-targets.
dpkg -s libssl-dev  >/dev/null 2>&1 || need+=(libssl-dev)
command -v pkg-config    >/dev/null 2>&1 || need+=(pkg-config)
# Headless Chromium renders the HTML verification report in tandem-rp's tests
# (rp/tests/report_chromium.rs); DejaVu is the report's font.
if ! $demo; then
  command -v chromium    >/dev/null 2>&1 || need+=(chromium)
  # The web front end's browser tests drive that Chromium through WebDriver
  # (tests/src/browser.rs); chromium-driver is Debian's chromedriver of the same version.
  command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
  dpkg -s fonts-dejavu-core >/dev/null 2>&1 || need+=(fonts-dejavu-core)
  # The PDF report is read back with poppler (pdftotext, pdfinfo) and checked with qpdf
  # (rp/tests/report_pdf.rs).
  command -v pdftotext   >/dev/null 2>&1 || need+=(poppler-utils)
  command -v qpdf        >/dev/null 2>&1 || need+=(qpdf)
  # `unzip -l` lists ASiC-E packages in tandem-rp's tests (documents::asic); python3's zipfile
  # reads them too (python3 is needed for pkilint below).
  command -v unzip       >/dev/null 2>&1 || need+=(unzip)
  # pdfsig (poppler-utils, above) lists PAdES signatures; pyHanko (below) runs in a venv,
  # since Debian's python3 is "externally managed".
  python3 -c "import venv, ensurepip" >/dev/null 2>&1 || need+=(python3-venv)
  # The .p12 files of `tandem rp-cert` are read back with Python's cryptography and the
  # mutual-TLS tests call the RP API with curl (tests/tests/rp_cert_cli.rs, rp_mtls.rs).
  python3 -c "import cryptography" >/dev/null 2>&1 || need+=(python3-cryptography)
  command -v curl        >/dev/null 2>&1 || need+=(curl)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
$demo && exit 0
# pkilint (X.509 linter) for the certificate tests; pinned for reproducible findings.
if ! python3 -c "import pkilint" >/dev/null 2>&1; then
  echo "installing pkilint" >&2
  python3 -m pip install --quiet --disable-pip-version-check "pkilint==0.13.3" >&2
fi
# pyHanko validates our PAdES signatures (tests/tests/pades.rs) in its own venv; the tests
# find it at $TANDEM_PYHANKO or /opt/tandem-venv/bin/pyhanko.
venv="${TANDEM_VENV:-/opt/tandem-venv}"
if [ ! -x "$venv/bin/pyhanko" ]; then
  echo "installing pyHanko into $venv" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || [ -w "$(dirname "$venv")" ] || SUDO="sudo"
  $SUDO python3 -m venv "$venv"
  # pyhanko-cli: the `pyhanko` command (split from pyhanko in 0.26). Pinned, as pkilint is.
  $SUDO "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "pyhanko==0.38.0" "pyhanko-certvalidator==0.33.0" "pyhanko-cli==0.6.0" >&2
fi
if ! command -v cargo-nextest >/dev/null 2>&1 && [ "${1:-}" = "--with-nextest" ]; then
  cargo install --locked cargo-nextest
fi
