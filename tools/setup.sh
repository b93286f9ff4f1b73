#!/usr/bin/env bash
# Set up this checkout on a fresh machine: Debian packages (bubblewrap for the grading sandbox,
# chromium for the browser tests, postgresql for the team-gradebook tests), a virtual environment
# in .venv, and the course package with its test extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq bubblewrap chromium postgresql >/dev/null
else
  echo "setup: no apt-get here; install bubblewrap (grading sandbox), chromium (browser tests) and" \
       "postgresql (team-gradebook tests) with your package manager." >&2
fi

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup: Python >= 3.11 is required ($python is $("$python" --version 2>&1))." \
       "Set PYTHON=/path/to/python3.11 and run again." >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
echo "setup: done (.venv ready; the course command is .venv/bin/course)"
