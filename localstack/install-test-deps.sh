#!/usr/bin/env bash
# localstack/install-test-deps.sh: installs what `make test` needs beyond Go, idempotently (whatever
# is present is skipped, so a second run does nothing). `make test` runs it first (target test-deps).
#
#   - kcat, confluent-kafka-python, kafka-python (+ its snappy/lz4/zstd codec modules) from Debian's
#     packages, for /usr/bin/python3 (integration/compat_*_test.go);
#   - Node.js/npm from Debian if absent, then kafkajs from integration/clients/node/package-lock.json;
#   - the pinned MinIO server, built by localstack/minio.sh install (minutes once, then cached).
#
# apt-get runs only as root; otherwise the script prints the exact command to run and exits 1.
# Opt-outs (the same variables make the tests skip those clients knowingly):
#   SEDIMENT_SKIP_KCAT=1 SEDIMENT_SKIP_CONFLUENT_KAFKA_PYTHON=1 SEDIMENT_SKIP_KAFKA_PYTHON=1
#   SEDIMENT_SKIP_KAFKAJS=1 SEDIMENT_SKIP_MINIO=1
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { echo "install-test-deps: $*" >&2; }
skip() { [ "${!1:-}" = "1" ]; }
PY=${SEDIMENT_PYTHON3:-/usr/bin/python3}

apt_pkgs=()
if ! skip SEDIMENT_SKIP_KCAT && ! command -v kcat >/dev/null 2>&1; then apt_pkgs+=(kcat); fi
if ! skip SEDIMENT_SKIP_CONFLUENT_KAFKA_PYTHON && ! "$PY" -c 'import confluent_kafka' >/dev/null 2>&1; then
  apt_pkgs+=(python3-confluent-kafka)
fi
if ! skip SEDIMENT_SKIP_KAFKA_PYTHON && ! "$PY" -c 'import kafka, snappy, lz4.frame, zstandard' >/dev/null 2>&1; then
  apt_pkgs+=(python3-kafka python3-snappy python3-lz4 python3-zstandard)
fi
if ! skip SEDIMENT_SKIP_KAFKAJS && ! command -v npm >/dev/null 2>&1; then apt_pkgs+=(nodejs npm); fi

if [ ${#apt_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "missing test clients; run as root:"
    echo "  apt-get update && apt-get install -y ${apt_pkgs[*]}" >&2
    log "(or opt out: SEDIMENT_SKIP_KCAT=1, SEDIMENT_SKIP_CONFLUENT_KAFKA_PYTHON=1, SEDIMENT_SKIP_KAFKA_PYTHON=1, SEDIMENT_SKIP_KAFKAJS=1)"
    exit 1
  fi
  log "apt-get install ${apt_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null
fi

# kafkajs and its pure-JS codecs from the committed lock file (no package needs an install script).
if ! skip SEDIMENT_SKIP_KAFKAJS; then
  node_dir=integration/clients/node
  if [ ! -f "$node_dir/node_modules/.package-lock.json" ] || [ "$node_dir/package-lock.json" -nt "$node_dir/node_modules/.package-lock.json" ]; then
    log "npm ci in $node_dir"
    (cd "$node_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  fi
fi

# The pinned MinIO server for localstack's (and tiering's) tests; no-op when present.
if ! skip SEDIMENT_SKIP_MINIO; then
  bash localstack/minio.sh install
fi
