#!/usr/bin/env bash
# bench/run.sh — the benchmark in one command (docs/BENCHMARKS.md).
#
#   bash bench/run.sh                  # full: 3 runs, 20,000 escalations, every system
#   bash bench/run.sh --quick          # smoke test, about 30-60 s
#   bash bench/run.sh --runs 5 --n 40000 --systems broker,hgd-http
#
# Installs what is missing (Debian packages; MQTT.js under bench/node from
# npm), builds hgd, hgctl and bench/hgbench into build-bench/ (Release,
# -DHG_BENCH=ON), then runs bench/bench.py with the arguments given: it
# prints a table and writes bench/results/<timestamp>.json. Traffic stays on
# 127.0.0.1; every process it starts is stopped at the end, also on failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
build=${HG_BENCH_BUILD:-$repo/build-bench}

need=()
for pair in mosquitto:mosquitto nginx:nginx-light perf:linux-perf openssl:openssl \
            cmake:cmake cc:gcc pkg-config:pkg-config; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
for pkg in python3-paho-mqtt python3-requests libpaho-mqtt-dev libcjson-dev libcurl4-openssl-dev \
           libwolfssl-dev libcmocka-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
# Node.js 18 or newer (fetch); Debian's nodejs is used when none is installed.
if ! command -v node >/dev/null 2>&1 || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 18 ]; then
  need+=(nodejs npm)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "bench: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's nginx package may start a default server on port 80: the bench
# does not need it, but leaves a running one alone.

if [ ! -d "$here/node/node_modules/mqtt" ]; then
  echo "bench: npm ci in bench/node"
  (cd "$here/node" && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "bench: building into $build"
cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release -DHG_BENCH=ON >/dev/null
cmake --build "$build" -j2 --target hgd hgctl hgbench >/dev/null

exec /usr/bin/python3 "$here/bench.py" --build "$build" "$@"
