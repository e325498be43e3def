#!/usr/bin/env bash
# Runs the Tandem demo: installs SoftHSM/OpenSC/OpenSSL if missing, builds, and runs
# `tandem demo` in a fresh ./demo-data directory.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
echo "building tandem (the first build takes a few minutes) ..." >&2
exec cargo run -p tandem-server --bin tandem -- demo "$@"
