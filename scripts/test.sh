#!/usr/bin/env bash
# Runs the whole test suite: installs what the tests need (SoftHSM, OpenSC, OpenSSL),
# builds once (debug, dependencies optimised) and runs every test with cargo-nextest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export TANDEM_TEST_PKCS11_MODULE="${TANDEM_TEST_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}"
cargo build --workspace --all-targets --locked
export TANDEM_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/tandem"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "$@"
else
  echo "cargo-nextest not found; falling back to cargo test" >&2
  cargo test --workspace --locked --no-fail-fast "$@"
fi
