#!/usr/bin/env bash
# Install everything the test suite needs, then run the whole suite:
#  - the Debian servers the tests talk to on loopback (Dovecot for IMAP and LMTP, SIPp for SIP, PostgreSQL for the
#    second store, Chromium for the browser tests, which the playwright package drives without a browser download);
#  - the Python packages, into a virtualenv of the checkout's own (.venv, created when missing), so that a package
#    some other program put on this machine cannot hide one the test extras forgot to name.
# Then ruff, the layer contracts (import-linter) and pytest (on two workers), all from that virtualenv. Extra
# arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

debs=(dovecot-imapd dovecot-lmtpd sip-tester chromium postgresql)  # postgresql: initdb/pg_ctl for tests/store
missing=()
for pkg in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

venv="${CONTINUITY_VENV:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
py="$venv/bin/python"
"$py" -m pip install -q --disable-pip-version-check -e '.[test]'
"$py" -m ruff check continuity tests
"$venv/bin/lint-imports"  # the layers of pyproject.toml's [tool.importlinter]: no import runs back up
# axe-core (npm) for the accessibility checks in real Chromium, into the virtualenv, before the workers start.
if [ ! -f "$venv/node_modules/axe-core/axe.min.js" ] && command -v npm >/dev/null; then
  npm install --prefix "$venv" --no-audit --no-fund --silent axe-core >/dev/null
fi
export PATH="$PWD/$venv/bin:$PATH"
# Two workers (CONTINUITY_TEST_WORKERS to change it, 0 for one process): most tests wait on real servers and
# processes rather than compute, so two halve the wall time on two cores. A test file stays on one worker.
workers="${CONTINUITY_TEST_WORKERS:-2}"
if [ "$workers" = "0" ]; then
  exec "$py" -m pytest "$@"
fi
exec "$py" -m pytest -n "$workers" --dist loadfile "$@"
