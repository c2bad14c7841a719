#!/usr/bin/env bash
# Builds tjid-intake and runs the daemon on the embedded default (config/default.toml):
# it watches var/maildir (drop .eml files into var/maildir/new/), keeps cases in
# var/intake.db and writes every reply as an .eml file into var/outbox/.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "cargo is needed (https://rustup.rs)" >&2; exit 1; }
# Scans are read with Tesseract (Swedish) and scanned PDFs rendered with poppler. Without them
# the daemon still reads digital forms; it logs an error and quarantines mail with scans.
source scripts/packages.sh
ensure_packages "poppler-utils:pdftoppm" "fonts-urw-base35:/usr/share/fonts/opentype/urw-base35/NimbusSans-Regular.otf" \
  "tesseract-ocr:tesseract" "tesseract-ocr-swe:/usr/share/tesseract-ocr/5/tessdata/swe.traineddata" \
  "tesseract-ocr-osd:/usr/share/tesseract-ocr/5/tessdata/osd.traineddata" \
  || echo "WARNING: without these packages scanned forms cannot be read" >&2
mkdir -p var/maildir/new var/maildir/cur var/maildir/tmp var/outbox
# Through cargo, so the binary is found wherever CARGO_TARGET_DIR puts it.
intake() { cargo run --quiet --release --locked -- --config config/default.toml "$@"; }
cargo build --release --locked
# The staff pages need a user. Offer to add the first one when there is none and someone is
# at the terminal; otherwise say how.
if [ -z "$(intake users list 2>/dev/null)" ]; then
  if [ -t 0 ]; then
    read -r -p "No staff user yet. User name for the first one (empty: skip): " user
    if [ -n "$user" ]; then
      read -r -s -p "Password for $user: " password; echo
      printf '%s\n' "$password" | intake users add "$user"
    fi
  else
    echo "No staff user yet: add one with: echo PASSWORD | tjid-intake users add NAME" >&2
  fi
fi
intake run
