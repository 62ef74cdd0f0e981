#!/usr/bin/env bash
# The README's first command: everything a fresh Debian/Ubuntu machine (Python 3.11+ given) needs to use
# the SDK and run its tests, then the demo.
#
#   1. the system packages the tests need, when missing (apt-get as root, or through sudo; with neither,
#      it prints the exact command to run and carries on):
#        chromium            a real headless browser for the dashboard test
#        poppler-utils       pdftoppm and pdffonts, which read the PDFs back (print packages, proof of service)
#        fonts-wqy-microhei  a CJK TrueType font the PDFs embed
#        postgresql          the server binaries (initdb, pg_ctl) for the PostgreSQL store tests' own
#                            throwaway server, when no server answers at the default DSN
#        python3-venv        `python3 -m venv` on Debian's own Python, when it lacks ensurepip
#   2. the virtual environment .venv with requirements-dev.txt (the SDK, its dev tools, every plugin);
#   3. the demo (options are passed on: ./scripts/setup.sh --tasks 500).
#
# Options: --dry-run prints the system packages it would install and stops. The environment variable
# DELIVERY_SDK_SETUP_ASSUME_MISSING="pkg ..." treats those packages as missing (to try the install path).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
dry_run=0
if [ "${1:-}" = "--dry-run" ]; then
  dry_run=1
  shift
fi

assumed_missing() { [[ " ${DELIVERY_SDK_SETUP_ASSUME_MISSING:-} " == *" $1 "* ]]; }

have_chromium() { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; }
have_poppler() { command -v pdftoppm >/dev/null 2>&1 && command -v pdffonts >/dev/null 2>&1; }
have_cjk_font() { [ -n "${DELIVERY_SDK_CJK_FONT:-}" ] || [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; }
have_pg_server() {
  command -v initdb >/dev/null 2>&1 && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && return 0
  [ -n "${DELIVERY_SDK_PG_BINDIR:-}" ] && [ -x "${DELIVERY_SDK_PG_BINDIR}/initdb" ]
}
have_venv() { "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; }

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "setup: $PYTHON is missing or older than 3.11; install Python 3.11 or newer (or set PYTHON=...)" >&2
  exit 2
fi

chromium_package=chromium
if grep -qi '^ID=ubuntu' /etc/os-release 2>/dev/null; then
  chromium_package=chromium-browser
fi

missing=()
check() { # check PACKAGE DETECTOR
  if assumed_missing "$1" || ! "$2"; then missing+=("$1"); fi
}
check "$chromium_package" have_chromium
check poppler-utils have_poppler
check fonts-wqy-microhei have_cjk_font
check postgresql have_pg_server
check python3-venv have_venv

if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup: system packages: all there"
else
  echo "setup: system packages to install: ${missing[*]}"
  install=(apt-get install -y -qq --no-install-recommends "${missing[@]}")
  if [ "$dry_run" -eq 1 ]; then
    echo "setup: would run: apt-get update && ${install[*]}"
    exit 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: no apt-get here: install the equivalents of ${missing[*]} with your package manager;" >&2
    echo "setup: going on (the tests that need them will fail and say which)" >&2
  else
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
      if command -v sudo >/dev/null 2>&1; then sudo=(sudo); fi
    fi
    if [ "$(id -u)" -eq 0 ] || [ "${#sudo[@]}" -gt 0 ]; then
      "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
      "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive "${install[@]}" >/dev/null
    else
      echo "setup: not root and no sudo: run this as root, then ./scripts/setup.sh again:" >&2
      echo "    apt-get update && ${install[*]}" >&2
      echo "setup: going on without them (the tests that need them will fail and say which)" >&2
    fi
  fi
fi
if [ "$dry_run" -eq 1 ]; then
  exit 0
fi

# The virtual environment, with the SDK, its dev tools and every plugin (editable).
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/pip install -q -r requirements-dev.txt

# The demo: a simulated day of a provincial service centre on the embedded SQLite store (the progress bar
# only on a terminal: CI's log gets the summary).
if [ $# -eq 0 ] && [ ! -t 2 ]; then
  set -- --no-progress
fi
exec .venv/bin/delivery-sdk demo "$@"
