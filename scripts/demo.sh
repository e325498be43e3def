#!/usr/bin/env bash
# Runs the Tandem demo on hsm-sim, the simulated HSM built with tandem (no SoftHSM needed):
# installs OpenSSL if missing (the `openssl` command verifies the demo's signatures, and the
# build links libssl), builds tandem and the hsm-sim module, and runs `tandem demo` in a fresh
# ./demo-data directory. `scripts/demo.sh --softhsm` uses a SoftHSM token instead.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--softhsm" ]; then
  scripts/install-deps.sh
else
  scripts/install-deps.sh --demo
fi
echo "building tandem and hsm-sim (the first build takes a few minutes) ..." >&2
cargo build -p tandem-cli -p tandem-hsm-sim
exec target/debug/tandem demo "$@"
