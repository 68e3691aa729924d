#!/usr/bin/env bash
# Install the local BigQuery API emulator (local-bigquery, MIT) and the GCS
# emulator (gcp-storage-emulator) into their own Python 3.13 venv.
#
#   scripts/install-bq-emulator.sh [DIR]      (default DIR: <repo>/.venv-bqemu)
#
# Idempotent: a fast no-op when DIR already holds a working install.
# Python 3.13 is looked up as: $CBI_EMULATOR_PYTHON, python3.13 on PATH,
# PYENV_VERSION=3.13.0 python3.13, ~/.pyenv/versions/3.13*/bin/python3.13.
# Works offline except for PyPI: DuckDB extensions come from PyPI wheels.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${1:-$REPO_ROOT/.venv-bqemu}"

DUCKDB_VERSION=1.5.5
EXTENSIONS=(icu ducklake spatial httpfs)
PACKAGES=(
  local-bigquery==0.3.2
  "duckdb==$DUCKDB_VERSION"
  "duckdb-extensions==$DUCKDB_VERSION"
  "duckdb-extension-icu==$DUCKDB_VERSION"
  "duckdb-extension-ducklake==$DUCKDB_VERSION"
  "duckdb-extension-spatial==$DUCKDB_VERSION"
  "duckdb-extension-httpfs==$DUCKDB_VERSION"
  gcp-storage-emulator==2026.7.19
)
STAMP="$DIR/.cbi-install-stamp"
# DuckDB installs extensions under $HOME/.duckdb; the emulator runs with HOME set to this
# folder inside the venv (sync/emulator.py), so the install is self-contained and works
# whatever the caller's HOME is.
EXT_HOME="$DIR/duckdb-home"
WANT_STAMP="$(printf '%s\n' "${PACKAGES[@]}")"

log() { echo "install-bq-emulator: $*" >&2; }

# True when DIR has the pinned packages and DuckDB can load every extension.
check() {
  [[ -x "$DIR/bin/python" && -x "$DIR/bin/local-bigquery" \
     && -x "$DIR/bin/gcp-storage-emulator" && -f "$STAMP" ]] || return 1
  [[ "$(cat "$STAMP")" == "$WANT_STAMP" ]] || return 1
  HOME="$EXT_HOME" "$DIR/bin/python" - "${EXTENSIONS[@]}" <<'PY' >/dev/null 2>&1
import sys, duckdb, local_bigquery, gcp_storage_emulator
con = duckdb.connect()
for name in sys.argv[1:]:
    con.execute(f"LOAD {name}")
PY
}

if check; then
  log "already installed and working in $DIR"
  exit 0
fi

is_py313() {
  "$@" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1
}

find_python() {
  local candidate
  if [[ -n "${CBI_EMULATOR_PYTHON:-}" ]]; then
    if is_py313 "$CBI_EMULATOR_PYTHON"; then
      echo "$CBI_EMULATOR_PYTHON"; return 0
    fi
    log "CBI_EMULATOR_PYTHON=$CBI_EMULATOR_PYTHON is not a working Python 3.13"
    return 1
  fi
  if command -v python3.13 >/dev/null 2>&1 && is_py313 python3.13; then
    command -v python3.13; return 0
  fi
  # pyenv shims: 3.13 installed but not the selected version.
  if command -v python3.13 >/dev/null 2>&1 && PYENV_VERSION=3.13.0 is_py313 python3.13; then
    PYENV_VERSION=3.13.0 python3.13 -c 'import sys; print(sys.executable)'; return 0
  fi
  for candidate in "$HOME"/.pyenv/versions/3.13*/bin/python3.13; do
    if [[ -x "$candidate" ]] && is_py313 "$candidate"; then
      echo "$candidate"; return 0
    fi
  done
  return 1
}

if ! PYTHON="$(find_python)"; then
  log "ERROR: Python 3.13 not found (local-bigquery requires Python 3.13)."
  log "Looked for: \$CBI_EMULATOR_PYTHON, python3.13 on PATH,"
  log "  PYENV_VERSION=3.13.0 python3.13, ~/.pyenv/versions/3.13*/bin/python3.13."
  log "Install Python 3.13 (e.g. 'pyenv install 3.13' or 'apt-get install python3.13 python3.13-venv')"
  log "or set CBI_EMULATOR_PYTHON=/path/to/python3.13, then re-run this script."
  exit 1
fi
log "using $PYTHON ($("$PYTHON" --version 2>&1))"

if [[ ! -x "$DIR/bin/python" ]] || ! is_py313 "$DIR/bin/python"; then
  rm -rf "$DIR"
  "$PYTHON" -m venv "$DIR"
fi
rm -f "$STAMP"
"$DIR/bin/python" -m pip install --quiet --disable-pip-version-check "${PACKAGES[@]}"

# Install the DuckDB extensions from the PyPI wheels into $EXT_HOME/.duckdb, so
# that the emulator never tries to download them at run time.
mkdir -p "$EXT_HOME"
HOME="$EXT_HOME" "$DIR/bin/python" - "${EXTENSIONS[@]}" <<'PY'
import sys
from duckdb_extensions import import_extension
for name in sys.argv[1:]:
    import_extension(name, force_install=True)
PY

printf '%s\n' "${PACKAGES[@]}" >"$STAMP"
if ! check; then
  log "ERROR: installed into $DIR but DuckDB cannot load its extensions (${EXTENSIONS[*]})."
  exit 1
fi
log "installed and working in $DIR"
