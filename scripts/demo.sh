#!/usr/bin/env bash
# The README's main-job command: builds both products and runs each on its
# embedded defaults. Outputs land in ./artifacts/demo.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh build
cargo build --release --locked --bins
out=artifacts/demo
mkdir -p "$out"
target/release/klang demo --out-dir "$out"
target/release/vmgate plan --example
