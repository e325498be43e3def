#!/usr/bin/env bash
# Supply-chain checks with cargo-deny against deny.toml (docs/SUPPLY_CHAIN.md):
# - always: licenses, bans (duplicate versions, wildcards) and sources (crates.io only);
# - advisories (RustSec): only with a copy of the advisory database. cargo-deny fetches it
#   with git from GitHub, which CI cannot reach. The copy is taken from
#     CARGO_DENY_ADVISORY_DB=/path/to/advisory-db   (a clone or mirror of rustsec/advisory-db)
#   or, without it, from GitHub when GitHub answers. With neither, from the dated snapshot
#   committed in supply-chain/advisory-db.tar.xz (supply-chain/README.md), with a loud
#   notice of its age: advisories published after it are not covered. Without the snapshot
#   too, the advisory check is skipped with a loud notice (the exit status stays 0 for
#   that, unless TANDEM_REQUIRE_ADVISORIES=1).
# Installs cargo-deny from crates.io when it is missing or another version.
# Exit status: non-zero when a check fails.
set -euo pipefail
cd "$(dirname "$0")/.."

DENY_VERSION=0.20.2
# cargo-deny's directory name for the default database URL (the URL's last segment and a
# hash of it): a copy placed there is opened without fetching.
DB_DIR_NAME=advisory-db-3157b0e258782691
DB_URL=https://github.com/rustsec/advisory-db

echo "== supply chain: cargo-deny $DENY_VERSION over deny.toml (licenses, bans, sources, advisories)"
if [ "$(cargo deny --version 2>/dev/null || true)" != "cargo-deny $DENY_VERSION" ]; then
  echo "installing cargo-deny $DENY_VERSION from crates.io" >&2
  cargo install --locked --quiet cargo-deny --version "$DENY_VERSION"
fi

status=0
cargo deny --locked check licenses bans sources || status=$?

target="${CARGO_TARGET_DIR:-$PWD/target}"
db_root="$target/advisory-dbs"
config="$db_root/deny.toml"
advisories=""
snapshot=supply-chain/advisory-db.tar.xz
snapshot_note=""
if [ -z "${CARGO_DENY_ADVISORY_DB:-}" ] && [ -f "$snapshot" ] &&
  ! timeout 20 git ls-remote --exit-code "$DB_URL" HEAD >/dev/null 2>&1; then
  # GitHub does not answer: the committed snapshot, as a one-commit git repository (what
  # cargo-deny opens), dated as the snapshot.
  snapshot_date=$(sed -n 's/^date: //p' supply-chain/advisory-db.txt)
  snapshot_commit=$(sed -n 's/^commit: //p' supply-chain/advisory-db.txt)
  expected_sha=$(sed -n 's/^sha256: //p' supply-chain/advisory-db.txt)
  actual_sha=$(sha256sum "$snapshot" | cut -d' ' -f1)
  if [ "$expected_sha" != "$actual_sha" ]; then
    echo "$snapshot: sha256 $actual_sha, supply-chain/advisory-db.txt says $expected_sha" >&2
    exit 1
  fi
  unpacked="$target/advisory-snapshot"
  rm -rf "$unpacked"
  mkdir -p "$unpacked"
  tar -xJf "$snapshot" -C "$unpacked"
  (
    cd "$unpacked"
    git init --quiet
    git add -A
    GIT_AUTHOR_DATE="${snapshot_date}T00:00:00Z" GIT_COMMITTER_DATE="${snapshot_date}T00:00:00Z" \
      git -c user.name=snapshot -c user.email=snapshot@localhost commit --quiet \
      -m "rustsec/advisory-db $snapshot_commit"
  )
  CARGO_DENY_ADVISORY_DB="$unpacked"
  age_days=$((($(date -u +%s) - $(date -u -d "$snapshot_date" +%s)) / 86400))
  snapshot_note="the committed snapshot of rustsec/advisory-db at $snapshot_commit ($snapshot_date, $age_days days old)"
fi
if [ -n "${CARGO_DENY_ADVISORY_DB:-}" ]; then
  if git -C "$CARGO_DENY_ADVISORY_DB" rev-parse --verify --quiet HEAD >/dev/null; then
    rm -rf "${db_root:?}/$DB_DIR_NAME"
    mkdir -p "$db_root"
    git clone --quiet "$CARGO_DENY_ADVISORY_DB" "$db_root/$DB_DIR_NAME"
    advisories="offline"
    echo "advisory database: $CARGO_DENY_ADVISORY_DB at $(git -C "$db_root/$DB_DIR_NAME" log -1 --format='%H (%cs)')"
  else
    echo "CARGO_DENY_ADVISORY_DB=$CARGO_DENY_ADVISORY_DB is not a git repository" >&2
    status=1
  fi
elif timeout 20 git ls-remote --exit-code "$DB_URL" HEAD >/dev/null 2>&1; then
  mkdir -p "$db_root"
  advisories="fetch"
fi

if [ -n "$advisories" ]; then
  # deny.toml with the database under target/ (not in ~/.cargo).
  sed "/^\[advisories\]/a db-path = \"$db_root\"" deny.toml >"$config"
  offline=()
  [ "$advisories" = offline ] && offline=(--offline)
  cargo deny --locked "${offline[@]}" --config "$config" check advisories || status=$?
  if [ "$advisories" = offline ]; then
    # Offline, cargo-deny cannot ask the crates.io index about yanked versions.
    echo "note: advisories checked offline against the copy above (yanked crates not checked)"
  fi
  if [ -n "$snapshot_note" ]; then
    cat >&2 <<EOF
!!
!! ADVISORIES CHECKED AGAINST A SNAPSHOT: GitHub does not answer, so the advisories came
!! from $snapshot_note.
!! Advisories published after that date are NOT covered. Refresh it from a machine with
!! GitHub access: scripts/update-advisory-snapshot.sh /path/to/advisory-db (supply-chain/README.md).
!!
EOF
  fi
else
  cat >&2 <<EOF
!!
!! ADVISORY CHECK SKIPPED: no RustSec advisory database is available here.
!! cargo-deny fetches it with git from $DB_URL, which this machine
!! cannot reach, and CARGO_DENY_ADVISORY_DB is not set. Licenses, bans and sources were
!! checked; known vulnerabilities were NOT. To check them, point CARGO_DENY_ADVISORY_DB at a
!! clone of rustsec/advisory-db and run scripts/supply-chain.sh (docs/SUPPLY_CHAIN.md).
!!
EOF
  if [ "${TANDEM_REQUIRE_ADVISORIES:-0}" = 1 ]; then
    echo "TANDEM_REQUIRE_ADVISORIES=1: failing because the advisory check was skipped" >&2
    status=1
  fi
fi

if [ "$status" -eq 0 ]; then
  if [ -n "$snapshot_note" ]; then
    echo "== supply chain: passed (advisories from the $snapshot_date snapshot, see above)"
  elif [ -n "$advisories" ]; then
    echo "== supply chain: passed (advisories included)"
  else
    echo "== supply chain: passed, but advisories were SKIPPED (see above)"
  fi
else
  echo "== supply chain: FAILED (status $status)" >&2
fi
exit "$status"
