#!/usr/bin/env bash
# localstack/stack.sh: MinIO plus Sediment brokers configured to use it, all on loopback, with logs
# and data under .localstack/stack/. No Docker needed.
#
#   localstack/stack.sh up       build bin/sediment, start MinIO (minio.sh start) and the brokers
#   localstack/stack.sh down     stop the brokers (SIGTERM, clean shutdown), then MinIO
#   localstack/stack.sh status   what is running
#
# Three brokers (node N: Kafka 127.0.0.1:9092+10*(N-1), Raft 9093+10*(N-1), HTTP 9644+10*(N-1)) form one
# Raft metadata cluster (--voters); each gets --object-store pointing at the MinIO bucket. Topics may use
# replication factor up to 3 (default.replication.factor stays 1 unless set). Tiering is on
# (remote.log.storage.system.enable=true): closed segments of topics with remote.storage.enable=true (the
# topic default follows the broker) are uploaded to the bucket, and local.retention.ms/bytes then trim the disk.
#
# Environment: STACK_BROKERS (default 3); SEDIMENT_LOCALSTACK (state dir, default <repo>/.localstack); SEDIMENT_BIN (use this
# sediment binary instead of building bin/sediment); STACK_KAFKA_PORT / STACK_RAFT_PORT / STACK_HTTP_PORT
# (node 1's ports, default 9092 / 9093 / 9644; node N adds 10*(N-1)); plus minio.sh's (MINIO_PORT, ...).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${SEDIMENT_LOCALSTACK:-$REPO/.localstack}
STACK=$STATE/stack
BROKERS=${STACK_BROKERS:-3}
MINIO="$REPO/localstack/minio.sh"

log() { echo "stack.sh: $*" >&2; }

KAFKA_PORT=${STACK_KAFKA_PORT:-9092}
RAFT_PORT=${STACK_RAFT_PORT:-9093}
HTTP_PORT=${STACK_HTTP_PORT:-9644}
SEDIMENT=${SEDIMENT_BIN:-$REPO/bin/sediment}

ports() { # node -> "kafka raft http"
  local off=$(( ($1 - 1) * 10 ))
  echo "$((KAFKA_PORT + off)) $((RAFT_PORT + off)) $((HTTP_PORT + off))"
}

voters() {
  local v="" n
  for n in $(seq 1 "$BROKERS"); do
    set -- $(ports "$n")
    v="$v${v:+,}$n=127.0.0.1:$2"
  done
  echo "$v"
}

broker_pid() {
  local f=$STACK/broker-$1/pid
  [ -f "$f" ] || return 1
  local pid; pid=$(cat "$f")
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

ready() { # http port
  local status
  status=$( (exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
             printf 'GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
             head -n1 <&3) 2>/dev/null || true)
  case "$status" in *" 200"*) return 0 ;; *) return 1 ;; esac
}

cmd_up() {
  if [ -z "${SEDIMENT_BIN:-}" ]; then (cd "$REPO" && go build -o bin/sediment ./cmd/sediment); fi
  "$MINIO" start
  eval "$("$MINIO" env)"   # AWS_* credentials and SEDIMENT_OBJECT_STORE for the brokers
  local n
  for n in $(seq 1 "$BROKERS"); do
    if pid=$(broker_pid "$n"); then log "broker $n already running (pid $pid)"; continue; fi
    set -- $(ports "$n")
    local dir=$STACK/broker-$n
    mkdir -p "$dir/data"
    local extra=()
    if [ "$BROKERS" -gt 1 ]; then extra=(--voters "$(voters)"); fi
    log "starting broker $n: kafka 127.0.0.1:$1 raft :$2 http :$3 (log $dir/sediment.log)"
    nohup "$SEDIMENT" serve --node-id "$n" --data-dir "$dir/data" \
      --listen "127.0.0.1:$1" --raft-listen "127.0.0.1:$2" --http-listen "127.0.0.1:$3" \
      --object-store "$SEDIMENT_OBJECT_STORE" --conf remote.log.storage.system.enable=true "${extra[@]}" \
      >>"$dir/sediment.log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
  done
  for n in $(seq 1 "$BROKERS"); do
    set -- $(ports "$n")
    local i
    for i in $(seq 1 600); do
      ready "$3" && break
      broker_pid "$n" >/dev/null || { log "broker $n exited; see $STACK/broker-$n/sediment.log"; tail -n 20 "$STACK/broker-$n/sediment.log" >&2; return 1; }
      sleep 0.1
    done
    ready "$3" || { log "broker $n not ready after 60 s"; return 1; }
  done
  log "up: bootstrap servers $(for n in $(seq 1 "$BROKERS"); do set -- $(ports "$n"); printf '127.0.0.1:%s ' "$1"; done)"
  log "tiering on: closed segments of topics with remote.storage.enable=true go to $SEDIMENT_OBJECT_STORE"
  return 0
}

cmd_down() {
  local n pid
  for n in $(seq 1 3); do  # stop any broker a future 3-node stack left behind too
    pid=$(broker_pid "$n") || continue
    kill -TERM "$pid"
    local i
    for i in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then log "broker $n still alive 30 s after SIGTERM; killing"; kill -KILL "$pid" || true; fi
    rm -f "$STACK/broker-$n/pid"
    log "broker $n stopped"
  done
  "$MINIO" stop
}

cmd_status() {
  local n
  for n in $(seq 1 3); do
    if pid=$(broker_pid "$n"); then set -- $(ports "$n"); echo "broker $n: running (pid $pid) kafka 127.0.0.1:$1"; fi
  done
  "$MINIO" status || true
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  -h|--help|help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
