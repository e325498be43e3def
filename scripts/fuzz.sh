#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser of outside input (docs/FUZZING.md): libFuzzer
# through cargo-fuzz on stable Rust (`--sanitizer none`), targets in fuzz/.
#
#   scripts/fuzz.sh SECONDS [TARGET...]  each target (default: all) for SECONDS; new inputs
#                                        go to fuzz/corpus/TARGET (not committed)
#   scripts/fuzz.sh --ci                 the committed seeds (fuzz/seeds/TARGET) of every
#                                        target, then a few seconds of fuzzing each (about a
#                                        minute in all); nothing is written to the repo
#   scripts/fuzz.sh --list               the targets
#
# Installs what it needs when missing: the C/C++ compiler libFuzzer is built with and
# OpenSSL's headers (Debian packages), cargo-fuzz (crates.io, pinned). The instrumented build
# lives in fuzz/target, apart from the workspace's target/. Exits non-zero when a target
# crashes (a panic, a failed property, a timeout or running out of memory) and names the
# input that did it (fuzz/artifacts/TARGET/crash-...).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
CARGO_FUZZ_VERSION=0.13.2

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 1 ] || usage
ci=false
case "$1" in
  --ci) ci=true; seconds=5; shift ;;
  --list) seconds=0 ;;
  ''|*[!0-9]*) usage ;;
  *) seconds="$1"; shift ;;
esac

all_targets() { sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^tandem-fuzz$'; }
if [ "${1:-}" = "--list" ] || [ "$seconds" = 0 ]; then all_targets; exit 0; fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(all_targets)

# --- tools -------------------------------------------------------------------------------
need=()
command -v c++ >/dev/null 2>&1 || need+=(g++)
command -v cc >/dev/null 2>&1 || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# OpenSSL and its headers (the server and hsm-sim link it).
scripts/install-deps.sh --demo
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  echo "installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
  cargo install --locked --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

# --- build -------------------------------------------------------------------------------
# Its own target dir, whatever CARGO_TARGET_DIR the caller has: the instrumented build
# must not replace the workspace's.
export CARGO_TARGET_DIR="$root/fuzz/target"
# The fuzz project resolves to the workspace's versions: its lock file is the workspace's
# (copied afresh, so a dependency added to a crate never leaves it stale), to which cargo
# adds only what the fuzz project alone needs (libfuzzer-sys, pinned in fuzz/Cargo.toml).
cp Cargo.lock fuzz/Cargo.lock
start=$(date +%s)
# All targets at once (they share every dependency; cargo-fuzz builds one or all).
(cd fuzz && cargo fuzz build --sanitizer none)
echo "== fuzz build: $(( $(date +%s) - start )) s" >&2
bin="$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release"

# --- run ---------------------------------------------------------------------------------
# Scratch space of the targets (hsm_sim_args keeps its token directory there).
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export TMPDIR="$scratch"
failed=()
for t in "${targets[@]}"; do
  [ -x "$bin/$t" ] || { echo "no such fuzz target: $t" >&2; exit 2; }
  seeds="$root/fuzz/seeds/$t"
  mkdir -p "$seeds" "$root/fuzz/artifacts/$t"
  if $ci; then
    corpus=$(mktemp -d)
  else
    corpus="$root/fuzz/corpus/$t"
    mkdir -p "$corpus"
  fi
  log=$(mktemp)
  echo "== fuzz $t: ${seconds} s" >&2
  status=0
  # The first corpus directory receives new inputs; the seeds are only read.
  "$bin/$t" "$corpus" "$seeds" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
    -print_final_stats=1 -artifact_prefix="$root/fuzz/artifacts/$t/" >"$log" 2>&1 || status=$?
  grep -E '^#[0-9]+ +DONE|^stat::(number_of_executed_units|peak_rss_mb|new_units_added)|INITED' "$log" | sed "s/^/  $t: /" >&2 || true
  grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9a-zA-Z]+' "$log" | tail -1 | sed "s/^/  $t: final /" >&2 || true
  if [ $status -ne 0 ]; then
    failed+=("$t")
    echo "!! $t failed (exit $status):" >&2
    grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written to' "$log" | head -20 >&2 || true
    tail -40 "$log" > "$root/fuzz/artifacts/$t/last-failure.log"
    echo "   log tail: fuzz/artifacts/$t/last-failure.log" >&2
    echo "   reproduce: $bin/$t <the crash file above>" >&2
  fi
  $ci && rm -rf "$corpus"
  rm -f "$log"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found failures in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzzing: ${#targets[@]} targets, no failures" >&2
