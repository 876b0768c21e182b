#!/usr/bin/env bash
# The README's test command: installs what the tests need, then checks
# formatting, lints and runs every test (root-only end-to-end tests included).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh test

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --doc --locked
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --profile ci
else
  cargo test --workspace --locked
fi
