#!/usr/bin/env bash
# What the tests need from the operating system and pip cannot install: Java 17+ and Maven
# (the local Kafka broker) and Chromium (the report's browser test). Installs only what is
# missing, with Debian's packages; says what to install when it cannot (not root, no apt).
set -euo pipefail

missing=()
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
# The demo needs no browser: `system-deps.sh demo` skips it.
if [ "${1:-test}" != demo ]; then
  command -v chromium >/dev/null || missing+=(chromium)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "missing system packages: ${missing[*]} (install them with your package manager)" >&2
  exit 1
fi
echo "installing system packages: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
