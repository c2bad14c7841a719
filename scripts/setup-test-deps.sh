#!/usr/bin/env bash
# Installs the Debian packages the tests use when they are missing, then checks each tool.
# Exits non-zero when one cannot be had.
set -euo pipefail

# package:command pairs — the command proves the package works.
NEEDED=(
  "qpdf:qpdf"
  "poppler-utils:pdftoppm"
  # Helvetica as print shows it (Nimbus Sans), for rendering forms: the scan generator and the
  # staff pages' page images.
  "fonts-urw-base35:/usr/share/fonts/opentype/urw-base35/NimbusSans-Regular.otf"
  "tesseract-ocr:tesseract"
  "tesseract-ocr-swe:/usr/share/tesseract-ocr/5/tessdata/swe.traineddata"
  "tesseract-ocr-osd:/usr/share/tesseract-ocr/5/tessdata/osd.traineddata"
  "dovecot-imapd:/usr/sbin/dovecot"
  "python3-aiosmtpd:/usr/lib/python3/dist-packages/aiosmtpd/__init__.py"
  "openssl:openssl"
  "slapd:slapd"
  "ldap-utils:ldapadd"
  "chromium:chromium"
  "chromium-driver:chromedriver"
)

# A command on PATH, or an absolute path to a file the package installs.
present() { if [[ "$1" == /* ]]; then [ -e "$1" ]; else command -v "$1" >/dev/null 2>&1; fi; }

missing=()
for pair in "${NEEDED[@]}"; do
  pkg="${pair%%:*}"; cmd="${pair##*:}"
  present "$cmd" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq || true
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" || true
fi
status=0
for pair in "${NEEDED[@]}"; do
  pkg="${pair%%:*}"; cmd="${pair##*:}"
  if ! present "$cmd"; then
    echo "MISSING: $cmd (Debian package $pkg) could not be installed" >&2
    status=1
  fi
done
exit $status
