# recledger — see README.md.
GO        ?= go
BIN       := bin/recledger
DATA      ?= ./data
# make run HTTP_ADDR=127.0.0.1:18080 NATS_ADDR=127.0.0.1:14222 moves the
# ports (empty: serve's own defaults, 8080 and 4222, or RECLEDGER_HTTP and
# RECLEDGER_NATS_LISTEN).
HTTP_ADDR ?=
NATS_ADDR ?=
PKGS      := ./...

.PHONY: build run test test-race bench bench-e2e fuzz lint clean

# -buildvcs=auto: `recledger version` and go_build_info name the source
# revision when built in a git checkout (overrides a GOFLAGS that turns it off).
build:
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/recledger

# Serve with the embedded JetStream and the bbolt ledger under ./data.
run: build
	$(BIN) serve --data $(DATA) $(if $(HTTP_ADDR),--http $(HTTP_ADDR)) $(if $(NATS_ADDR),--nats-listen $(NATS_ADDR))

# lint first: go vet, staticcheck, and gofmt of every tracked Go file.
test: lint
	$(GO) test -count=1 -timeout 10m $(PKGS)

test-race:
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

# Benchmarks report ratios against plain bbolt measured in the same run.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 2s -timeout 30m ./ledger/ ./projections/ ./replay/ ./ingest/

bench-e2e: build
	$(GO) test -run '^$$' -bench E2E -benchtime 1x -timeout 30m ./cmd/...

# Short fuzzing of every parser (FUZZTIME=30s make fuzz). A new input
# that widens coverage is minimized before fuzzing goes on, up to a
# minute by default: on a file-sized input (FuzzCheckFileLength's) that
# outlasted a short FUZZTIME and failed the run with "context deadline
# exceeded", though nothing was wrong.
FUZZTIME ?= 10s
FUZZMINIMIZETIME ?= 2s
fuzz:
	@for p in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -h '^func Fuzz' $$p/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "fuzz $$p $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $$p || exit 1; \
	  done; \
	done

# staticcheck at a fixed version, fetched by the go command through the
# module proxy on first use (about a minute), from the build cache after.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint:
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi

clean:
	rm -rf bin
