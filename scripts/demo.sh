#!/usr/bin/env bash
# Runs the Tandem demo: installs SoftHSM/OpenSC/OpenSSL if missing, builds, and runs
# `tandem demo` in a fresh ./demo-data directory.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
exec cargo run -q -p tandem-server --bin tandem -- demo "$@"
