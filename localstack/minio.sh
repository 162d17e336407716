#!/usr/bin/env bash
# localstack/minio.sh: a MinIO server on loopback with a bucket, for local Sediment development
# and tests. No Docker needed.
#
#   localstack/minio.sh install   build the pinned MinIO into .localstack/bin (once; cached)
#   localstack/minio.sh start     install if absent, start on 127.0.0.1, wait healthy, create bucket
#   localstack/minio.sh stop      SIGTERM, wait for a clean exit (SIGKILL after 20 s)
#   localstack/minio.sh status    running or not (exit 0 if running and healthy, 3 if not running)
#   localstack/minio.sh env       print the environment a client needs (eval "$(... env)")
#
# Environment (all optional):
#   MINIO_BIN            use this minio binary instead of .localstack/bin/minio
#   SEDIMENT_LOCALSTACK  state directory (default: <repo>/.localstack)
#   MINIO_PORT           S3 API port on 127.0.0.1 (default 9000); MINIO_CONSOLE_PORT (default 9001)
#   MINIO_BUCKET         bucket to create (default sediment)
#   MINIO_ROOT_USER / MINIO_ROOT_PASSWORD  (default sediment / sediment-local-secret)
set -euo pipefail

MINIO_MODULE=github.com/minio/minio
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c   # keep in step with localstack/minio.go

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${SEDIMENT_LOCALSTACK:-$REPO/.localstack}
BIN_DIR=$STATE/bin
MINIO_DIR=$STATE/minio
PID_FILE=$MINIO_DIR/minio.pid
LOG_FILE=$MINIO_DIR/minio.log
PORT=${MINIO_PORT:-9000}
CONSOLE_PORT=${MINIO_CONSOLE_PORT:-9001}
BUCKET=${MINIO_BUCKET:-sediment}
export MINIO_ROOT_USER=${MINIO_ROOT_USER:-sediment}
export MINIO_ROOT_PASSWORD=${MINIO_ROOT_PASSWORD:-sediment-local-secret}
ENDPOINT=http://127.0.0.1:$PORT

log() { echo "minio.sh: $*" >&2; }

minio_bin() {
  if [ -n "${MINIO_BIN:-}" ]; then echo "$MINIO_BIN"; else echo "$BIN_DIR/minio"; fi
}

cmd_install() {
  local bin; bin=$(minio_bin)
  if [ -x "$bin" ]; then
    log "MinIO present: $bin"
    return 0
  fi
  if [ -n "${MINIO_BIN:-}" ]; then
    log "MINIO_BIN=$MINIO_BIN is not an executable file"; return 1
  fi
  command -v go >/dev/null 2>&1 || { log "go is required to build MinIO"; return 1; }
  mkdir -p "$BIN_DIR"
  log "building $MINIO_MODULE@$MINIO_VERSION into $BIN_DIR (several minutes on a cold cache; cached afterwards)"
  GOBIN=$BIN_DIR GOFLAGS=-mod=mod go install "$MINIO_MODULE@$MINIO_VERSION"
  [ -x "$BIN_DIR/minio" ] || { log "go install finished but $BIN_DIR/minio is missing"; return 1; }
}

lsbucket_bin() {
  # The bucket helper is built once from this repository (localstack/cmd/lsbucket) and cached.
  local out=$BIN_DIR/lsbucket
  local src=$REPO/localstack
  if [ ! -x "$out" ] || [ -n "$(find "$src/cmd/lsbucket" "$src/minio.go" -newer "$out" 2>/dev/null | head -1)" ]; then
    mkdir -p "$BIN_DIR"
    (cd "$REPO" && go build -o "$out" ./localstack/cmd/lsbucket)
  fi
  echo "$out"
}

running_pid() {
  [ -f "$PID_FILE" ] || return 1
  local pid; pid=$(cat "$PID_FILE")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

healthy() {
  # bash's /dev/tcp keeps this free of curl/wget: one HTTP/1.0 GET, status line only.
  local status
  status=$( (exec 3<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
             printf 'GET /minio/health/live HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
             head -n1 <&3) 2>/dev/null || true)
  case "$status" in *" 200"*) return 0 ;; *) return 1 ;; esac
}

cmd_start() {
  if pid=$(running_pid); then
    log "already running (pid $pid) at $ENDPOINT"
  else
    cmd_install
    local helper; helper=$(lsbucket_bin)
    mkdir -p "$MINIO_DIR/data"
    log "starting MinIO on $ENDPOINT (data $MINIO_DIR/data, log $LOG_FILE)"
    MINIO_BROWSER=off MINIO_UPDATE=off nohup "$(minio_bin)" server --quiet \
      --address "127.0.0.1:$PORT" --console-address "127.0.0.1:$CONSOLE_PORT" \
      "$MINIO_DIR/data" >>"$LOG_FILE" 2>&1 </dev/null &
    echo $! >"$PID_FILE"
    if ! "$helper" -endpoint "$ENDPOINT" -bucket "$BUCKET" -timeout 60s; then
      log "MinIO did not become ready; last log lines:"
      tail -n 20 "$LOG_FILE" >&2 || true
      cmd_stop || true
      return 1
    fi
    return 0
  fi
  "$(lsbucket_bin)" -endpoint "$ENDPOINT" -bucket "$BUCKET" -timeout 60s
}

cmd_stop() {
  local pid
  if ! pid=$(running_pid); then
    log "not running"
    rm -f "$PID_FILE"
    return 0
  fi
  kill -TERM "$pid"
  for _ in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$PID_FILE"; log "stopped (pid $pid)"; return 0; }
    sleep 0.1
  done
  log "pid $pid still alive 20 s after SIGTERM; killing"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PID_FILE"
}

cmd_status() {
  local pid
  if pid=$(running_pid); then
    if healthy; then echo "running (pid $pid) at $ENDPOINT, healthy"; return 0; fi
    echo "running (pid $pid) at $ENDPOINT, NOT healthy (see $LOG_FILE)"; return 1
  fi
  echo "not running"; return 3
}

cmd_env() {
  cat <<ENV
export AWS_ACCESS_KEY_ID=$MINIO_ROOT_USER
export AWS_SECRET_ACCESS_KEY=$MINIO_ROOT_PASSWORD
export AWS_REGION=us-east-1
export SEDIMENT_OBJECT_STORE='s3://$BUCKET?endpoint=$ENDPOINT&region=us-east-1&path-style=true'
ENV
}

case "${1:-}" in
  install) cmd_install ;;
  start)   cmd_start ;;
  stop)    cmd_stop ;;
  status)  cmd_status ;;
  env)     cmd_env ;;
  -h|--help|help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
