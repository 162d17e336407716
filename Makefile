# Sediment developer entry points. `make run` and `make test` are the README's quick start.
GO ?= go
BIN := bin

.PHONY: build run test test-short vet fuzz bench bench-durable clean

build:
	$(GO) build -o $(BIN)/sediment ./cmd/sediment

# Runs a single-node cluster on embedded defaults (data in ./data).
run: build
	./$(BIN)/sediment serve

# Everything CI runs: the real clients and MinIO the tests drive (test-deps), vet, then every test
# (unit, fuzz seed corpora, integration, client compatibility).
test: test-deps vet
	$(GO) test -count=1 -timeout 30m ./...

test-short:
	$(GO) test -short ./...

# go vet, and gofmt over our own code (third_party is vendored as published).
vet:
	$(GO) vet ./...
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null | grep -v '^third_party/' || find . -name '*.go' -not -path './third_party/*'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi

# The load generator (`sediment bench`: the machine's limits, then Sediment flush always/os and
# franz-go's kfake one after another; MB/s, records/s, latency percentiles, ratios; table on stdout,
# JSON in bin/bench.json, CPU profile of Sediment's produce phase in bin/bench-produce.pprof; see
# docs/benchmarks.md), then the go test benchmarks (short).
bench: build
	./$(BIN)/sediment bench --json $(BIN)/bench.json --cpuprofile $(BIN)/bench-produce.pprof
	$(GO) test -run '^$$' -bench . -benchtime 100x -benchmem ./...

# Issue 2's target side by side: durable append (always, 8 partitions, 16 KiB batches) alternated with
# `dd bs=1M count=1024 conv=fdatasync` on the same file system, ROUNDS pairs (segment/bench_vs_dd.sh).
bench-durable:
	GO=$(GO) segment/bench_vs_dd.sh

clean:
	rm -rf $(BIN)

# Local stack without Docker (localstack/; owner: compat). MinIO on 127.0.0.1:9000 with bucket "sediment".
.PHONY: minio minio-stop stack stack-down test-deps
# kcat, Python and Node Kafka clients, MinIO: installed when missing (idempotent; apt-get only as root,
# otherwise it prints the command; SEDIMENT_SKIP_<CLIENT>=1 opts out). See localstack/install-test-deps.sh.
test-deps:
	localstack/install-test-deps.sh

minio:
	localstack/minio.sh start

minio-stop:
	localstack/minio.sh stop

# MinIO plus three brokers using it (see localstack/stack.sh).
stack:
	localstack/stack.sh up

stack-down:
	localstack/stack.sh down
