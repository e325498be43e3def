#!/usr/bin/env bash
# Runs the hot-path benchmark (server/benches/split_key.rs) in a release build: builds the
# hsm-sim module first, so both HSMs (SoftHSM and hsm-sim) are measured, each row next to an
# OpenSSL reference from the same run. Arguments go to the benchmark: [bits] [iterations].
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release -p tandem-hsm-sim
exec cargo bench -p tandem-server --bench split_key -- "$@"
