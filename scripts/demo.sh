#!/usr/bin/env bash
# demo.sh — the whole system on this machine, end to end:
#   install what is missing, build hgd and hgctl, start a local mosquitto on a
#   free loopback port (with systemd/mosquitto-hgd.conf), make a throwaway CA,
#   start an HTTPS receiver (scripts/hg_receiver.py), write a keys file, start
#   hgd, configure a webhook with hgctl, publish an escalation with hgctl, and
#   show the signed POST as received and verified. Everything is stopped at
#   the end. Exits non-zero unless the POST arrived and its signatures verified.
# HG_DEMO_KEEP=1 keeps the work directory (logs, keys, state) for a look.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
top=$PWD
py=/usr/bin/python3

if [ -t 1 ]; then
  say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
  say() { printf '\n== %s\n' "$*"; }
fi
die() { printf '\ndemo: FAILED: %s\n' "$*" >&2; exit 1; }

say "1. Debian packages"
bash scripts/setup.sh

say "2. Build hgd and hgctl"
cmake -S . -B build-demo -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHG_TESTS=OFF >/dev/null
cmake --build build-demo -j "$(nproc 2>/dev/null || echo 2)" --target hgd hgctl >/dev/null
hgd=$top/build-demo/daemon/hgd
hgctl=$top/build-demo/cli/hgctl
"$hgd" --version

work=$(mktemp -d /tmp/hg-demo.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "${HG_DEMO_KEEP:-}" ]; then echo "demo: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() {
  "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# wait_for SECONDS DESCRIPTION COMMAND…: poll until COMMAND succeeds.
wait_for() {
  local secs=$1 what=$2
  shift 2
  local end=$((SECONDS + secs))
  until "$@" 2>/dev/null; do
    ((SECONDS < end)) || die "no $what after ${secs}s"
    sleep 0.1
  done
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

say "3. mosquitto on loopback"
mq=$(free_port)
{
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\n' "$mq"
  cat systemd/mosquitto-hgd.conf
} >"$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" 2>"$work/mosquitto.log" &
pids+=($!)
wait_for 10 "mosquitto on port $mq" port_open "$mq"
echo "mosquitto listening on 127.0.0.1:$mq (config: listener + systemd/mosquitto-hgd.conf)"

say "4. Throwaway CA and the HTTPS receiver"
whsec="whsec_$(openssl rand -hex 16)"
"$py" -u scripts/hg_receiver.py --tls-dir "$work/tls" --port-file "$work/receiver.port" \
  --secret "$whsec" >"$work/receiver.log" 2>&1 &
pids+=($!)
wait_for 30 "receiver port file" test -s "$work/receiver.port"
rx=$(cat "$work/receiver.port")
cat "$work/receiver.log"

say "5. A publisher key (hgctl keygen) in keys.json, mode 0600"
entry=$("$hgctl" keygen --id ops)
key_secret=$("$py" -c 'import json,sys; print(json.loads(sys.argv[1])["secret"])' "$entry")
(umask 077 && printf '{ "keys": [ %s ] }\n' "$entry" >"$work/keys.json")
echo "key id: ops (all Genies, all actions); secret kept in $work/keys.json"

say "6. hgd"
"$hgd" --broker "mqtt://127.0.0.1:$mq" --state-dir "$work/state" --keys "$work/keys.json" \
  --instance demo --allow-net 127.0.0.0/8 --webhook-cafile "$work/tls/ca.pem" \
  --status-interval 5 2>"$work/hgd.log" &
hgd_pid=$!
pids+=("$hgd_pid")
hgd_ready() {
  kill -0 "$hgd_pid" 2>/dev/null || { cat "$work/hgd.log" >&2; die "hgd exited"; }
  grep -q 'event=ready' "$work/hgd.log"
}
wait_for 20 "hgd ready (event=ready)" hgd_ready
cat "$work/hgd.log"

export HGCTL_HOST=127.0.0.1 HGCTL_PORT=$mq HGCTL_KEY_ID=ops HGCTL_KEY_SECRET=$key_secret
agent=3fa85f64-5717-4562-b3fc-2c963f66afa6
url="https://127.0.0.1:$rx/escalations"

say "7. hgctl webhook set (secret + a custom field) and webhook get"
set -x
"$hgctl" webhook set "$agent" --url "$url" --secret "$whsec" \
  --field eventId --field callerNumber --field reason --field summary \
  --field "accountNumber=the caller's account number"
"$hgctl" webhook get "$agent"
{ set +x; } 2>/dev/null

say "8. hgctl escalate"
set -x
"$hgctl" escalate "$agent" --caller +15551230000 --reason requested_human \
  --summary "Caller asked for a person." --call-sid CA0123456789abcdef \
  --field accountNumber=AC-99817
{ set +x; } 2>/dev/null

say "9. The POST as the receiver got it"
wait_for 20 "POST at the receiver" grep -q '^RESULT:' "$work/receiver.log"
sed -n '/^=== POST/,$p' "$work/receiver.log"
echo "hgd's log line for it:"
grep 'event=delivery' "$work/hgd.log" || true

say "10. Stop"
kill -TERM "$hgd_pid"
wait "$hgd_pid" && echo "hgd stopped cleanly (exit 0)" || echo "hgd exit status $?"
tail -n 3 "$work/hgd.log"

if grep -q '^RESULT: VERIFIED' "$work/receiver.log"; then
  printf '\ndemo: OK — the escalation arrived as a signed POST and both signatures verified.\n'
else
  die "the POST did not verify (see above)"
fi
