#!/usr/bin/env bash
# Provision a SoftHSM 2 token for Tandem.
#
# usage: softhsm-provision.sh <token-dir> <token-label> <pin-file>
#
#   <token-dir>    directory for softhsm2.conf and the token store (<token-dir>/tokens)
#   <token-label>  label of the token the server opens (HsmConfig::token_label)
#   <pin-file>     file holding the user PIN (mode 0600). If it does not exist, random user
#                  and SO PINs are generated; the SO PIN goes to <pin-file>.so.
#
# stdout carries exactly one line, `export SOFTHSM2_CONF=...`, so that
#   eval "$(deploy/softhsm-provision.sh /var/lib/tandem/softhsm tandem /etc/tandem/hsm-pin)"
# works; progress messages go to stderr.
#
# Idempotent: if a token with <token-label> already exists, nothing is changed. The keys the
# server needs (KEK, transport key) are created by the server itself (`Hsm::ensure_objects`).
set -euo pipefail

if [ "$#" -ne 3 ]; then
    echo "usage: $0 <token-dir> <token-label> <pin-file>" >&2
    exit 2
fi

token_dir_arg=$1
label=$2
pin_file=$3

if [ -z "$label" ] || [ "${#label}" -gt 32 ]; then
    echo "error: the token label must be 1 to 32 characters" >&2
    exit 2
fi

command -v softhsm2-util >/dev/null 2>&1 || {
    echo "error: softhsm2-util not found (install the softhsm2 package)" >&2
    exit 1
}

umask 077
mkdir -p "$token_dir_arg/tokens"
token_dir=$(cd "$token_dir_arg" && pwd -P)
conf="$token_dir/softhsm2.conf"

if [ ! -e "$conf" ]; then
    cat >"$conf" <<CONF
# SoftHSM 2 configuration for Tandem, written by softhsm-provision.sh
directories.tokendir = $token_dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
    echo "wrote $conf" >&2
else
    echo "keeping existing $conf" >&2
fi
export SOFTHSM2_CONF="$conf"

# Does a token with this label exist already? softhsm2-util pads labels with spaces.
token_exists() {
    softhsm2-util --show-slots 2>/dev/null |
        sed -n 's/^[[:space:]]*Label:[[:space:]]*//p' |
        sed 's/[[:space:]]*$//' |
        grep -Fxq -- "$label"
}

random_pin() {
    # 16 random bytes as 32 hex characters
    od -An -tx1 -N16 /dev/urandom | tr -d ' \n'
}

if token_exists; then
    echo "token '$label' already exists in $token_dir/tokens; nothing to do" >&2
else
    if [ ! -e "$pin_file" ]; then
        mkdir -p "$(dirname -- "$pin_file")"
        random_pin >"$pin_file"
        chmod 600 "$pin_file"
        echo "generated a random user PIN in $pin_file" >&2
    fi
    if [ ! -e "$pin_file.so" ]; then
        random_pin >"$pin_file.so"
        chmod 600 "$pin_file.so"
        echo "generated a random SO PIN in $pin_file.so" >&2
    fi
    user_pin=$(tr -d '\r\n' <"$pin_file")
    so_pin=$(tr -d '\r\n' <"$pin_file.so")
    if [ -z "$user_pin" ] || [ -z "$so_pin" ]; then
        echo "error: empty PIN in $pin_file or $pin_file.so" >&2
        exit 1
    fi
    # softhsm2-util only takes PINs as command-line arguments (or prompts on a terminal), so
    # for the few milliseconds this runs they are visible in the process list to the same
    # user and root. That is unavoidable with this tool and acceptable for SoftHSM, which is
    # for tests and demos. The Tandem server itself reads the PIN only from a file or an
    # environment variable, never from its command line.
    softhsm2-util --init-token --free --label "$label" \
        --pin "$user_pin" --so-pin "$so_pin" >&2
    unset user_pin so_pin
    echo "initialised token '$label'" >&2
fi

printf 'export SOFTHSM2_CONF=%q\n' "$conf"
