#!/usr/bin/env bash
# Drives a real `tend serve` with `tend load` on this machine and prints, in the
# same run, pgbench's single-row INSERT rate (the raw limit of the database).
# Used by `make bench-load`. Needs psql and pgbench (Debian: postgresql-client).
set -euo pipefail
db=${BENCH_DB:-tend_bench}
dur=${LOAD_DURATION:-20s}
bin=${BIN:-bin/tend}
server=${TEND_BENCH_SERVER:-postgres://postgres@127.0.0.1:5432}
addr=${TEND_BENCH_ADDR:-127.0.0.1:18080}
url="$server/$db?sslmode=disable"

psql -q "$server/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
export TEND_DATABASE_URL=$url
"$bin" migrate up >/dev/null
token=$("$bin" token create --role admin --name bench 2>/dev/null)

TEND_ADDR=$addr TEND_RATE_LIMIT=-1 TEND_LOG_LEVEL=warn "$bin" serve &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -sf "http://$addr/readyz" >/dev/null && break; sleep 0.2; done

echo "== pgbench: single-row INSERT into an indexed table, 16 clients, 10 s (the raw limit)"
psql -q "$url" -c "CREATE TABLE IF NOT EXISTS pgbench_rows (id bigserial PRIMARY KEY, patient_id uuid, value float8, observed_at timestamptz);
  CREATE INDEX IF NOT EXISTS pgbench_rows_idx ON pgbench_rows (patient_id, observed_at)"
script=$(mktemp)
echo "INSERT INTO pgbench_rows (patient_id, value, observed_at) VALUES (gen_random_uuid(), random() * 100, now());" >"$script"
pgbench -n -c 16 -j 2 -T 10 -f "$script" "$url" 2>/dev/null | grep -E "^tps|latency average"
rm -f "$script"

echo "== tend load: single readings, 32 devices, 1000 patients, flat out, $dur"
"$bin" load --url "http://$addr" --token "$token" --devices 32 --duration "$dur"
echo "== tend load: batches of 500, 4 devices, 200 patients, flat out, $dur"
"$bin" load --url "http://$addr" --token "$token" --devices 4 --patients 200 --batch 500 --duration "$dur"

# Issue 3: the full default pack against threshold rules alone, with 2% of
# readings abnormal so that window rules, hysteresis and alerting do work.
window_rules="spo2-low-sustained hf-weight-gain-24h hf-weight-gain-7d missed-doses no-weight-36h"
set_rules() { # $1: true|false
  for id in $window_rules; do
    curl -sf -o /dev/null -X PUT -H "Authorization: Bearer $token" "http://$addr/v1/rules/$id" --json "{\"enabled\": $1}" ||
      echo "could not set $id enabled=$1" >&2
  done
}
# Runs alternate (threshold, full, threshold, full): the database grows with
# every run, so back-to-back A-then-B would bias against B.
for mode in threshold full threshold full; do
  if [ "$mode" = threshold ]; then
    set_rules false
    echo "== tend load: threshold rules only (window, event and missing rules disabled), 2% abnormal, $dur"
  else
    set_rules true
    echo "== tend load: full default pack, 2% abnormal, $dur"
  fi
  "$bin" load --url "http://$addr" --token "$token" --devices 32 --duration "$dur" --abnormal 0.02
done

# The audit chain kept up: how long entries waited for the sealer (from the
# entry's time, taken before its transaction committed, to its seal), and the
# chain verifies.
sleep 1
echo "== audit seal delay (ms) over every entry of the runs above"
psql -At "$url" -c "SELECT 'entries ' || count(*) || ', mean ' || round(avg(d)::numeric, 1) || ', p50 ' ||
  round((percentile_cont(0.5) WITHIN GROUP (ORDER BY d))::numeric, 1) || ', p99 ' ||
  round((percentile_cont(0.99) WITHIN GROUP (ORDER BY d))::numeric, 1) || ', max ' || round(max(d)::numeric, 1) ||
  ', unsealed now ' || (SELECT count(*) FROM audit_entries e WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.entry_id = e.id))
  FROM (SELECT extract(epoch FROM c.sealed_at - e.at) * 1000 AS d FROM audit_chain c JOIN audit_entries e ON e.id = c.entry_id) AS s"
"$bin" audit verify
