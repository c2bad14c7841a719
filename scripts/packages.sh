#!/usr/bin/env bash
# Sourced by setup-test-deps.sh and run-embedded.sh. `ensure_packages PKG:CMD ...` installs
# each Debian package whose command (on PATH, or an absolute path to a file the package
# installs) is missing, then checks again; returns non-zero when one cannot be had.

# A command on PATH, or an absolute path to a file the package installs.
present() { if [[ "$1" == /* ]]; then [ -e "$1" ]; else command -v "$1" >/dev/null 2>&1; fi; }

ensure_packages() {
  local pair pkg cmd status=0
  local missing=()
  for pair in "$@"; do
    pkg="${pair%%:*}"; cmd="${pair##*:}"
    present "$cmd" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    local sudo=""
    if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" || true
  fi
  for pair in "$@"; do
    pkg="${pair%%:*}"; cmd="${pair##*:}"
    if ! present "$cmd"; then
      echo "MISSING: $cmd (Debian package $pkg) could not be installed" >&2
      status=1
    fi
  done
  return $status
}
