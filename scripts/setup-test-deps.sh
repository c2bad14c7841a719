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
  # The PostgreSQL store's tests (tests/store_contract.rs) use the server on 127.0.0.1:5432.
  "postgresql-client:psql"
  "postgresql-client:pg_isready"
)

ensure_packages "${NEEDED[@]}"

# The PostgreSQL tests need a running server on 127.0.0.1:5432 that user postgres reaches
# without a password (they create and drop a database each). Without it they fail under CI.
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "MISSING: no PostgreSQL server answers on 127.0.0.1:5432 (pg_isready -h 127.0.0.1)" >&2
  exit 1
fi
if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc 'SELECT 1' >/dev/null; then
  echo "MISSING: PostgreSQL on 127.0.0.1:5432 does not let user postgres in (trust auth)" >&2
  exit 1
fi
