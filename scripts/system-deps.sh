#!/usr/bin/env bash
# Installs the Debian packages ingot needs and that are missing (nothing when all are there).
#   build: OpenSSL headers and pkg-config (librdkafka is built with TLS and SASL)
#   test:  the servers and tools the tests use (PostgreSQL, stunnel, openssl, npm for a schema)
# A tool already on the PATH counts as present however it was installed.
set -euo pipefail

# package → what shows it is there: a command on the PATH, or a file.
wanted=()
for need in "$@"; do
  case "$need" in
    build) wanted+=("libssl-dev:/usr/include/openssl/ssl.h" "pkg-config:pkg-config") ;;
    test) wanted+=("postgresql:/usr/lib/postgresql/*/bin/initdb" "stunnel4:stunnel4" "openssl:openssl" "npm:npm") ;;
    *) echo "system-deps.sh: unknown group '$need' (build, test)" >&2; exit 2 ;;
  esac
done

missing=()
for entry in "${wanted[@]}"; do
  package="${entry%%:*}" probe="${entry#*:}"
  if [[ "$probe" == /* ]]; then
    compgen -G "$probe" >/dev/null || missing+=("$package")
  else
    command -v "$probe" >/dev/null || missing+=("$package")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
