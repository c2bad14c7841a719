#!/usr/bin/env bash
# Runs rustfmt's check, clippy (warnings are errors) and every test: unit, golden, integration
# (crash safety, bad input, daemon) and the tests against real servers. Set CI=true to make a
# missing server a failure instead of a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_THREAD_LIMIT=1   # Tesseract: OpenMP threads only cost time on 2 cores
cargo fmt --check
cargo clippy --locked --workspace --all-targets -- -D warnings
cargo test --locked --workspace --all-targets --no-fail-fast 2>&1
