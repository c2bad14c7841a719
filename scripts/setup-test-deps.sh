#!/usr/bin/env bash
# Installs the Debian packages the tests use when they are missing, then checks each tool.
# Exits non-zero when one cannot be had.
set -euo pipefail

# package:command pairs — the command proves the package works.
source "$(dirname "$0")/packages.sh"
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

ensure_packages "${NEEDED[@]}"
