#!/usr/bin/env bash
# Tools the deployment tests (tests/deploy) need, installed only when missing:
#   promtool        Debian's `prometheus` package (check config, check rules, test rules)
#   docker-compose  Debian's `docker-compose` (1.29, `config` validation; skipped when `docker compose` exists)
# Needs root or password-less sudo and apt-get; otherwise says what is missing and exits 0
# (the tests then skip locally and fail under CI=true). .ci/run and `make deploy-tools` run it.
set -euo pipefail

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null 2>&1; then
  missing+=(docker-compose)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    echo "install-tools: missing ${missing[*]}; install them as root (apt-get install --no-install-recommends ${missing[*]})" >&2
    exit 0
  fi
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-tools: missing ${missing[*]} and no apt-get here" >&2
  exit 0
fi

echo "install-tools: apt-get install ${missing[*]}"
"${SUDO[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Only promtool is wanted from `prometheus`: on a systemd host, do not leave its server running.
if [[ " ${missing[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
  "${SUDO[@]}" systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
command -v promtool >/dev/null && promtool --version 2>&1 | head -1
