# Sourced by the other scripts: shared settings, and a check that cargo is there.
# IGLOO_CACHE holds the cargo target dir and the chdb-core virtualenv, outside any checkout,
# so that fresh clones reuse earlier builds.
IGLOO_CACHE="${IGLOO_CACHE:-$HOME/.cache/igloo}"
export IGLOO_CACHE
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$IGLOO_CACHE/target}"

if ! command -v cargo >/dev/null 2>&1; then
  echo "$(basename "$0"): cargo not found; install Rust from https://rustup.rs and re-run" >&2
  exit 1
fi
