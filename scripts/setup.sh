#!/usr/bin/env bash
# setup.sh — install the Debian packages that building, testing and the demo
# need, and only those that are missing. Idempotent and quiet; run as root
# (or with sudo) on Debian 12.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config          # the C toolchain and CMake
  libpaho-mqtt-dev libcjson-dev             # MQTT v5 client, JSON
  libcurl4-openssl-dev libssl-dev           # HTTPS delivery (and Paho's TLS)
  libwolfssl-dev                            # HMAC, RNG, base64
  libsystemd-dev                            # sd_notify: Type=notify, watchdog
  libcmocka-dev                             # unit tests
  mosquitto mosquitto-clients               # the broker for tests and the demo
  python3 python3-paho-mqtt                 # integration harness, demo receiver
  openssl ca-certificates                   # throwaway CA at test time
  systemd man-db dpkg-dev                   # tests: systemd-analyze verify, man, dpkg-shlibdeps
  clang libclang-rt-14-dev                  # libFuzzer harnesses (scripts/fuzz.sh)
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  echo "setup: all ${#PKGS[@]} packages already installed"
  exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "setup: run as root (apt-get is needed)" >&2; exit 1; }
  sudo=(sudo)
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
