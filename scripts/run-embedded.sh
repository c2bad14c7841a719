#!/usr/bin/env bash
# Builds tjid-intake and runs the daemon on the embedded default (config/default.toml):
# it watches var/maildir (drop .eml files into var/maildir/new/), keeps cases in
# var/intake.db and writes every reply as an .eml file into var/outbox/.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "cargo is needed (https://rustup.rs)" >&2; exit 1; }
cargo build --release --locked
mkdir -p var/maildir/new var/maildir/cur var/maildir/tmp var/outbox
exec target/release/tjid-intake --config config/default.toml run
