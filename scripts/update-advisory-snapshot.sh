#!/usr/bin/env bash
# Refreshes supply-chain/advisory-db.tar.xz, the dated snapshot of the RustSec advisory
# database that scripts/supply-chain.sh uses when GitHub does not answer.
#   scripts/update-advisory-snapshot.sh [/path/to/advisory-db]
# Without an argument it clones https://github.com/rustsec/advisory-db (needs GitHub).
# Then run scripts/supply-chain.sh and commit supply-chain/ with the findings in
# docs/SUPPLY_CHAIN.md.
set -euo pipefail
cd "$(dirname "$0")/.."

source_repo="${1:-https://github.com/rustsec/advisory-db}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone --quiet "$source_repo" "$work/db"
commit=$(git -C "$work/db" log -1 --format=%H)
date=$(git -C "$work/db" log -1 --format=%cs)
# Reproducible: sorted names, fixed owner and mtime, no .git.
tar -C "$work/db" --exclude=.git --sort=name --mtime="$date 00:00Z" --owner=0 --group=0 \
  --numeric-owner -cf - . | xz -9e >supply-chain/advisory-db.tar.xz
cat >supply-chain/advisory-db.txt <<META
source: https://github.com/rustsec/advisory-db
commit: $commit
date: $date
sha256: $(sha256sum supply-chain/advisory-db.tar.xz | cut -d' ' -f1)
META
echo "supply-chain/advisory-db.tar.xz: rustsec/advisory-db at $commit ($date)"
