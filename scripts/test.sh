#!/usr/bin/env bash
# Runs the whole test suite: installs what the tests need (SoftHSM, OpenSC, OpenSSL),
# builds once (debug, dependencies optimised) and runs every test with cargo-nextest; then
# runs the server's HSM suite (server/tests/hsm_softhsm.rs) a second time against hsm-sim
# (selected from the same workspace build, so nothing is compiled again); last, a short
# fuzzing pass over the committed seed corpora (scripts/fuzz.sh --ci).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
target="${CARGO_TARGET_DIR:-$PWD/target}"
export TANDEM_TEST_PKCS11_MODULE="${TANDEM_TEST_PKCS11_MODULE:-/usr/lib/softhsm/libsofthsm2.so}"
cargo build --workspace --all-targets --locked
export TANDEM_BIN="$target/debug/tandem"
status=0
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "$@" || status=$?
  echo "== the server's HSM suite again, against hsm-sim" >&2
  TANDEM_TEST_HSM=hsm-sim TANDEM_TEST_PKCS11_MODULE="$target/debug/libtandem_hsm_sim.so" \
    cargo nextest run --workspace --locked --no-fail-fast -E 'binary(hsm_softhsm)' || status=$?
else
  echo "cargo-nextest not found; falling back to cargo test" >&2
  cargo test --workspace --locked --no-fail-fast "$@" || status=$?
  TANDEM_TEST_HSM=hsm-sim TANDEM_TEST_PKCS11_MODULE="$target/debug/libtandem_hsm_sim.so" \
    cargo test --workspace --test hsm_softhsm --locked --no-fail-fast || status=$?
fi
# A short coverage-guided pass over the committed seed corpora (docs/FUZZING.md): about a
# minute of fuzzing, plus the instrumented build in fuzz/target on a fresh machine.
echo "== fuzz pass (scripts/fuzz.sh --ci)" >&2
scripts/fuzz.sh --ci || status=$?
# Licenses, duplicate versions, sources and (when a database is at hand) advisories
# (scripts/supply-chain.sh, docs/SUPPLY_CHAIN.md).
scripts/supply-chain.sh || status=$?
exit $status
