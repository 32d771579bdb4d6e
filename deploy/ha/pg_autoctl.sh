#!/usr/bin/env bash
# Creates (once) and runs one member of Tend's pg_auto_failover formation:
# the monitor, or a Postgres node (the first becomes the primary, the next a
# standby with synchronous replication). Run it as the postgres user, one per
# host, under systemd (tend-ha.service) or by hand. docs/deploy.md describes
# the whole setup; `make ha-test` runs this script on one machine.
#
#   pg_autoctl.sh monitor   create and run the monitor
#   pg_autoctl.sh node      create and run a Postgres node (database tend)
#   pg_autoctl.sh tune      set the monitor's failover timings (run once, after the monitor is up)
#
# Configuration (environment; see ha.env.example):
#   PGDATA           data directory of this member (required)
#   PGPORT           its port (default 5432)
#   HA_HOSTNAME      the name or address other members and Tend reach this host by (required)
#   HA_MONITOR       the monitor's URL, for nodes and tune (postgres://autoctl_node@monitor:5432/pg_auto_failover?sslmode=require)
#   HA_AUTH          authentication between members: scram-sha-256 (default) or trust (a throw-away test setup only)
#   HA_SSL           --ssl-self-signed (default), or --no-ssl, or your own --ssl-ca-file/--server-cert/--server-key options
#   HA_PARTITION_TIMEOUT  seconds a primary that reaches neither the monitor nor its standby waits before it demotes itself (default 5)
#   HA_UNHEALTHY_TIMEOUT  seconds of failed health checks after which the monitor fails a primary over (default 5)
#   HA_DEMOTE_TIMEOUT     seconds the monitor waits for a lost primary to demote itself before promoting (default 10; keep it above HA_PARTITION_TIMEOUT)
set -euo pipefail

: "${PGDATA:?set PGDATA}"
PGPORT="${PGPORT:-5432}"
HA_AUTH="${HA_AUTH:-scram-sha-256}"
HA_SSL="${HA_SSL:---ssl-self-signed}"
# Debian installs the server's programs outside PATH: use the newest.
if ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
  PATH="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1):$PATH"
fi
export PGDATA PGPORT PATH

configured() { pg_autoctl config get --pgdata "$PGDATA" pg_autoctl.role >/dev/null 2>&1; }

case "${1:-}" in
  monitor)
    : "${HA_HOSTNAME:?set HA_HOSTNAME}"
    if ! configured; then
      # shellcheck disable=SC2086 # HA_SSL holds options
      pg_autoctl create monitor --pgdata "$PGDATA" --pgport "$PGPORT" --hostname "$HA_HOSTNAME" --auth "$HA_AUTH" $HA_SSL
    fi
    exec pg_autoctl run --pgdata "$PGDATA"
    ;;
  node)
    : "${HA_HOSTNAME:?set HA_HOSTNAME}" "${HA_MONITOR:?set HA_MONITOR}"
    if ! configured; then
      # replication-quorum and candidate-priority: every node may be
      # promoted, and the primary's commits wait for a standby
      # (synchronous_standby_names 'ANY 1 (…)') while one is up.
      # shellcheck disable=SC2086
      pg_autoctl create postgres --pgdata "$PGDATA" --pgport "$PGPORT" --hostname "$HA_HOSTNAME" --auth "$HA_AUTH" $HA_SSL \
        --dbname tend --monitor "$HA_MONITOR" --replication-quorum true --candidate-priority 50
      pg_autoctl config set --pgdata "$PGDATA" timeout.network_partition_timeout "${HA_PARTITION_TIMEOUT:-5}"
    fi
    exec pg_autoctl run --pgdata "$PGDATA"
    ;;
  tune)
    : "${HA_MONITOR:?set HA_MONITOR}"
    # Fail over within about 20 s of losing the primary: notice it within
    # HA_UNHEALTHY_TIMEOUT, then give it HA_DEMOTE_TIMEOUT to demote itself
    # (it does after HA_PARTITION_TIMEOUT alone) before promoting the standby.
    psql -v ON_ERROR_STOP=1 -q "${HA_MONITOR_ADMIN:-$HA_MONITOR}" <<SQL
ALTER SYSTEM SET pgautofailover.health_check_period = '1s';
ALTER SYSTEM SET pgautofailover.health_check_timeout = '1s';
ALTER SYSTEM SET pgautofailover.health_check_max_retries = 1;
ALTER SYSTEM SET pgautofailover.health_check_retry_delay = '1s';
ALTER SYSTEM SET pgautofailover.node_considered_unhealthy_timeout = '${HA_UNHEALTHY_TIMEOUT:-5}s';
ALTER SYSTEM SET pgautofailover.primary_demote_timeout = '${HA_DEMOTE_TIMEOUT:-10}s';
SELECT pg_reload_conf();
SQL
    ;;
  *)
    sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
