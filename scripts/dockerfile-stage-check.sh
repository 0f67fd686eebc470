#!/usr/bin/env bash
# Runs the Dockerfile's build stage without a Docker engine: the same files copied into an
# empty directory, the same two cargo builds (dependencies against a stub, then the binary).
# It catches a build stage that cannot work (a file the manifest needs but the stage does not
# copy) where no engine is available. The COPY lines it mirrors are checked against the
# Dockerfile, so a change there fails here until this script follows.
set -euo pipefail
cd "$(dirname "$0")/.."

expected=$'COPY Cargo.toml Cargo.lock build.rs ./\nCOPY benches ./benches\nCOPY src ./src'
actual=$(sed -n '/^FROM .* AS build/,/^FROM /p' Dockerfile | grep '^COPY ' || true)
if [ "$actual" != "$expected" ]; then
  echo "the Dockerfile's build stage copies:" >&2
  echo "$actual" >&2
  echo "but this check mirrors:" >&2
  echo "$expected" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp Cargo.toml Cargo.lock build.rs "$work/"
cp -r benches "$work/benches"
export CARGO_TARGET_DIR="$PWD/target/docker-stage"
(
  cd "$work"
  mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs
  cargo build --release --locked --quiet
  rm -rf src
)
cp -r src "$work/src"
(
  cd "$work"
  touch src/main.rs src/lib.rs
  OPRETAIL_EXPORTER_REVISION=stage-check cargo build --release --locked --quiet --bin opretail-exporter
)
"$CARGO_TARGET_DIR/release/opretail-exporter" --version
echo "Dockerfile build stage: builds"
