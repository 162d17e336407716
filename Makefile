# Sediment developer entry points. `make run` and `make test` are the README's quick start.
GO ?= go
BIN := bin

.PHONY: build run test test-short vet fuzz bench clean

build:
	$(GO) build -o $(BIN)/sediment ./cmd/sediment

# Runs a single-node cluster on embedded defaults (data in ./data).
run: build
	./$(BIN)/sediment serve

# Everything CI runs: vet, then every test (unit, fuzz seed corpora, integration).
test: vet
	$(GO) test -count=1 -timeout 30m ./...

test-short:
	$(GO) test -short ./...

vet:
	$(GO) vet ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf $(BIN)
