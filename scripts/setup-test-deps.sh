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
  # A strict SMTP relay (tests/neighbours.rs, tests/support/postfix.rs): a throwaway instance
  # per test; apt does not start the system's one here.
  "postfix:/usr/sbin/postfix"
  "slapd:slapd"
  "ldap-utils:ldapadd"
  "chromium:chromium"
  "chromium-driver:chromedriver"
  # The PostgreSQL store's tests (tests/store_contract.rs) use the server on 127.0.0.1:5432.
  "postgresql-client:psql"
  "postgresql-client:pg_isready"
  # The Debian package and its systemd unit (tests/packaging.rs): dpkg-deb unpacks it,
  # dpkg-shlibdeps fills in its library dependencies, systemd-analyze verifies the unit, strip
  # (binutils) strips the binary.
  "dpkg:dpkg-deb"
  "dpkg-dev:dpkg-shlibdeps"
  "binutils:strip"
  "systemd:systemd-analyze"
  # tests/bad_input.rs reads the peak memory of the program under test through python3.
  "python3:python3"
  # The family3 generator (scripts/family3/generate.py), run by tests/family3.rs to check that
  # the committed fixtures are its deterministic output: Debian's /usr/bin/python3 with Pillow,
  # numpy, reportlab and img2pdf, and the fonts it draws with.
  "python3-pil:/usr/lib/python3/dist-packages/PIL/__init__.py"
  "python3-numpy:/usr/lib/python3/dist-packages/numpy/__init__.py"
  "python3-reportlab:/usr/lib/python3/dist-packages/reportlab/__init__.py"
  "img2pdf:/usr/lib/python3/dist-packages/img2pdf.py"
  "fonts-dejavu-core:/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
  "fonts-liberation2:/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf"
)

ensure_packages "${NEEDED[@]}"

# cargo-deb builds the .deb (tests/packaging.rs). 3.8.0 needs Rust 1.85 (the project: 1.95).
# Built once per machine, a few minutes; then it stays in ~/.cargo/bin.
CARGO_DEB_VERSION=3.8.0
if ! cargo deb --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
  echo "installing: cargo-deb $CARGO_DEB_VERSION"
  cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION" || true
fi
if ! cargo deb --version >/dev/null 2>&1; then
  echo "MISSING: cargo-deb could not be installed (cargo install cargo-deb --locked)" >&2
  exit 1
fi

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
