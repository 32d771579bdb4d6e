#!/usr/bin/env bash
# Compares two builds of Tend on this machine, interleaved, against the raw
# database measured in the same run. Used by `make bench-compare BASE=<rev>`.
#
# Builds BASE (any git revision) and the working tree (HEAD), then for
# ROUNDS rounds (5) runs each build in turn — the order alternating between
# rounds — on a fresh database: the raw baselines (pgbench single-row INSERT
# at 32 clients; four parallel COPY streams of the same rows), then `tend
# load` with single readings from 32 devices and batches of 500 from 4
# devices. Prints every figure of every round, each build's ratio to its own
# baselines, p99 and peak RSS, the CPU time each process spends per single
# reading and per batched reading (the server, the load generator, the
# database) next to the database's per INSERT of pgbench, and the medians. The load generator is
# HEAD's for both builds, so only the server differs.
# Needs psql and pgbench (Debian: postgresql-client).
set -euo pipefail
base=${BASE:?set BASE to a git revision, such as BASE=main}
rounds=${ROUNDS:-5}
dur=${LOAD_DURATION:-15s}
db=${BENCH_DB:-tend_bench}
server=${TEND_BENCH_SERVER:-postgres://postgres@127.0.0.1:5432}
addr=${TEND_BENCH_ADDR:-127.0.0.1:18080}
url="$server/$db?sslmode=disable"
out=${BENCH_OUT:-bin/bench-compare}
mkdir -p "$out"
out=$(cd "$out" && pwd)
trap 'echo "bench-compare: failed at line $LINENO" >&2' ERR

rev=$(git rev-parse --short "$base")
echo "building $base ($rev) and HEAD ($(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo +dirty))"
tree=$(mktemp -d)
git worktree add -q --detach "$tree" "$rev"
(cd "$tree" && GOFLAGS=-buildvcs=false go build -o "$out/tend-base" ./cmd/tend)
git worktree remove --force "$tree"
GOFLAGS=-buildvcs=false go build -o "$out/tend-head" ./cmd/tend

rows=${COPY_ROWS:-100000}
copyfile="$out/copy.tsv"
psql -qAt "$server/postgres" -c "COPY (SELECT gen_random_uuid(), round((random() * 100)::numeric, 1), now() - i * interval '1 second'
  FROM generate_series(1, $rows) AS i) TO STDOUT" >"$copyfile"

# run BIN LABEL ROUND: one measurement of one build, appended to results.
results="$out/results.tsv"
: >"$results"
run() {
  local bin=$1 label=$2 round=$3 pid
  psql -q "$server/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db" 2>/dev/null
  TEND_DATABASE_URL=$url "$bin" migrate up >/dev/null 2>&1
  local token
  token=$(TEND_DATABASE_URL=$url "$bin" token create --role admin --name bench 2>/dev/null)
  TEND_DATABASE_URL=$url TEND_ADDR=$addr TEND_RATE_LIMIT=-1 TEND_LOG_LEVEL=error "$bin" serve >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do curl -sf "http://$addr/readyz" >/dev/null && break; sleep 0.2; done

  # The raw database: a readings-shaped table with its index.
  psql -q "$url" -c "CREATE TABLE raw_rows (id bigserial PRIMARY KEY, patient_id uuid, value float8, observed_at timestamptz);
    CREATE INDEX raw_rows_idx ON raw_rows (patient_id, observed_at)"
  local script
  script=$(mktemp)
  echo "INSERT INTO raw_rows (patient_id, value, observed_at) VALUES (gen_random_uuid(), random() * 100, now());" >"$script"
  local insert pgb p0 p1 r0 r1
  pgb=$(mktemp)
  pgbench -n -c 32 -j 2 -T 10 -f "$script" "$url" >"$pgb" 2>/dev/null &
  sleep 2
  p0=$(dbticks "application_name = 'pgbench' AND datname = '$db'"); r0=$(rowcount raw_rows)
  sleep 6
  p1=$(dbticks "application_name = 'pgbench' AND datname = '$db'"); r1=$(rowcount raw_rows)
  wait $! || true
  insert=$(awk '/^tps/ {print int($3)}' "$pgb")
  rm -f "$script" "$pgb"
  local dbinsert
  dbinsert=$(perreading "$(ticksdelta "$p0" "$p1")" "$r0" "$r1")
  local t0 t1 copy copiers=()
  t0=$(date +%s.%N)
  for _ in 1 2 3 4; do
    psql -q "$url" -c "\\copy raw_rows (patient_id, value, observed_at) FROM '$copyfile'" &
    copiers+=($!)
  done
  wait "${copiers[@]}"
  t1=$(date +%s.%N)
  copy=$(awk -v a="$t0" -v b="$t1" -v n="$rows" 'BEGIN {print int(4 * n / (b - a))}')

  local single batch cpu bcpu
  measure single "$out/tend-head" load --url "http://$addr" --token "$token" --devices 32 --duration "$dur"
  single=$measured cpu=$measuredcpu
  measure batch "$out/tend-head" load --url "http://$addr" --token "$token" --devices 4 --patients 200 --batch 500 --duration "$dur"
  batch=$measured bcpu=$measuredcpu
  local rss
  rss=$(awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$pid/status")
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$label" "$insert" "$copy" \
    "$(awk '/^readings\/s/ {print $2}' <<<"$single")" "$(awk '/p99/ {print $9}' <<<"$single")" \
    "$(awk '/^readings\/s/ {print $2}' <<<"$batch")" "$(awk '/p99/ {print $9}' <<<"$batch")" "$rss" "$cpu" "$dbinsert" "$bcpu" | tee -a "$results"
}

# dbticks WHERE: the CPU clock ticks (user + system) so far of each of the
# database's processes that pg_stat_activity's WHERE selects, and of its WAL
# writer, checkpointer and background writer, as "pid:ticks,...".
dbticks() {
  local pids
  pids=$(psql -Atq "$server/postgres" -c "SELECT '/proc/' || pid || '/stat' FROM pg_stat_activity WHERE ($1)
      OR backend_type IN ('walwriter', 'checkpointer', 'background writer')")
  # shellcheck disable=SC2086 # one path per pid; cat goes on past a process that has ended
  cat $pids 2>/dev/null | awk '{printf "%s:%d,", $1, $14 + $15}' || true
}

# ticksdelta A B: the ticks the processes of snapshot B used since snapshot A
# (all of a process's ticks when it started in between). A process that ended
# in between is not counted, so the figure is never below zero.
ticksdelta() {
  awk -v a="$1" -v b="$2" 'BEGIN {n = split(a, x, ","); for (i = 1; i <= n; i++) if (split(x[i], kv, ":") == 2) t[kv[1]] = kv[2]
    n = split(b, y, ","); for (i = 1; i <= n; i++) if (split(y[i], kv, ":") == 2) d += kv[2] - t[kv[1]]; print d + 0}'
}

rowcount() { psql -Atq "$url" -c "SELECT count(*) FROM $1"; }

# perreading TICKS R0 R1: microseconds of CPU per row stored between counts R0 and R1.
perreading() { awk -v t="$1" -v a="$2" -v b="$3" 'BEGIN {n = b - a; if (n <= 0) n = 1; printf "%d", t * 1e4 / n}'; }

proccpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# measure NAME COMMAND...: runs a load generator against the server ($pid),
# sets measured to its report and measuredcpu to the CPU time per reading of
# the server, the load generator and the database (tab-separated), taken over
# the middle of the run: from 3 s after posting starts (past the warm-up) to
# 2 s before it ends.
measure() {
  local name=$1 logf lp s0 l0 d0 r0 s1 l1 d1 r1
  shift
  logf=$(mktemp)
  "$@" >"$logf.out" 2>"$logf" &
  lp=$!
  for _ in $(seq 1 600); do grep -q posting "$logf" && break; sleep 0.1; done
  sleep 3
  s0=$(proccpu "$pid"); l0=$(proccpu "$lp"); d0=$(dbticks "datname = '$db'"); r0=$(rowcount readings)
  sleep "$(( ${dur%s} - 5 ))"
  s1=$(proccpu "$pid"); l1=$(proccpu "$lp"); d1=$(dbticks "datname = '$db'"); r1=$(rowcount readings)
  wait "$lp" || true
  measured=$(cat "$logf.out")
  measuredcpu="$(perreading $((s1 - s0)) "$r0" "$r1")	$(perreading $((l1 - l0)) "$r0" "$r1")	$(perreading "$(ticksdelta "$d0" "$d1")" "$r0" "$r1")"
  rm -f "$logf" "$logf.out"
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf 'round\tbuild\tINSERT/s\tCOPY/s\tsingle/s\tp99 ms\tbatch/s\tp99 ms\tRSS MB\tCPU µs per single reading: server\tload\tdatabase\tdatabase per INSERT\tCPU µs per batched reading: server\tload\tdatabase\n'
for round in $(seq 1 "$rounds"); do
  if ((round % 2)); then order="base head"; else order="head base"; fi
  for label in $order; do
    run "$out/tend-$label" "$label" "$round"
  done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# Ratios per round, then the medians per build.
awk -F'\t' -v base="$base ($rev)" '
function median(a, n,   i, j, t) {
  for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
  return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
}
{
  b = $2; n[b]++
  s[b, n[b]] = $5 / $3; bt[b, n[b]] = $7 / $4
  sp[b, n[b]] = $6; bp[b, n[b]] = $8; r[b, n[b]] = $9; cs[b, n[b]] = $10; cl[b, n[b]] = $11; cd[b, n[b]] = $12; ci[b, n[b]] = $13
  ks[b, n[b]] = $14; kl[b, n[b]] = $15; kd[b, n[b]] = $16
  printf "round %s %-4s single %.3f× INSERT (p99 %s ms)  batches %.3f× COPY (p99 %s ms)  RSS %s MB\n", $1, b, $5 / $3, $6, $7 / $4, $8, $9
}
END {
  print ""
  print "medians over " n["head"] " rounds (targets: single ≥ 1.0× with p99 ≤ 10 ms, batches ≥ 0.8×, RSS ≤ 150 MB)"
  split("base head", builds, " ")
  for (k = 1; k <= 2; k++) {
    b = builds[k]; m = n[b]; delete x; delete y; delete z; delete w; delete v; delete c1; delete c2; delete c3; delete c4; delete k1; delete k2; delete k3
    for (i = 1; i <= m; i++) { x[i] = s[b, i]; y[i] = bt[b, i]; z[i] = sp[b, i]; w[i] = bp[b, i]; v[i] = r[b, i]
      c1[i] = cs[b, i]; c2[i] = cl[b, i]; c3[i] = cd[b, i]; c4[i] = ci[b, i]
      k1[i] = ks[b, i]; k2[i] = kl[b, i]; k3[i] = kd[b, i] }
    printf "%-4s %-22s single %.3f× (p99 %.1f ms)  batches %.3f× (p99 %.1f ms)  RSS %d MB  CPU µs/reading: server %d, load %d, database %d (pgbench: database %d per INSERT); batched: server %d, load %d, database %d\n",
      b, (b == "base" ? base : "working tree"), median(x, m), median(z, m), median(y, m), median(w, m), median(v, m),
      median(c1, m), median(c2, m), median(c3, m), median(c4, m), median(k1, m), median(k2, m), median(k3, m)
  }
}' "$results"
