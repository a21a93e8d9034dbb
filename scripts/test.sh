#!/usr/bin/env bash
# Install everything the test suite needs (Python packages, the Debian servers it talks to on loopback:
# Dovecot for IMAP, SIPp for SIP, and Chromium for the browser test), then run the whole suite. Extra
# arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

# chromium: the browser tests/public drives through the playwright package (Debian's build, no download).
debs=(dovecot-imapd dovecot-lmtpd sip-tester chromium)
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

python3 -m pip install -q --disable-pip-version-check -e '.[test]'
python3 -m ruff check continuity tests
exec python3 -m pytest "$@"
