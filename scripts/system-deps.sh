#!/usr/bin/env bash
# Installs the Debian packages ingot needs and that are missing (nothing when all are there).
#   build: OpenSSL headers and pkg-config (librdkafka is built with TLS and SASL)
#   test:  the servers and tools the tests use (PostgreSQL, stunnel, openssl, npm for a schema)
set -euo pipefail

packages=()
for need in "$@"; do
  case "$need" in
    build) packages+=(libssl-dev pkg-config) ;;
    test) packages+=(postgresql stunnel4 openssl npm) ;;
    *) echo "system-deps.sh: unknown group '$need' (build, test)" >&2; exit 2 ;;
  esac
done

missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
