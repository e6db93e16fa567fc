# Staydown. `make demo` and `make test` are the two commands a newcomer needs.
GO        ?= go
BIN       ?= bin/staydown
FUZZTIME  ?= 10s
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_VTPROTO_VERSION := v0.6.0
# The demo's first port: its nodes use BASE_PORT to BASE_PORT+2 (libp2p)
# and BASE_PORT+100 to BASE_PORT+102 (HTTP API), on 127.0.0.1.
BASE_PORT ?= 4101
GOBUILD    = $(GO) build $$(git rev-parse HEAD >/dev/null 2>&1 && echo -buildvcs=true) -o $(BIN) ./cmd/staydown

.PHONY: all build test test-unit fuzz demo bench lint proto clean

all: build

# The binary names the commit it was built from (staydown --version)
# when built in a git checkout.
build:
	$(GOBUILD)

# The CI command: vet, every test with the race detector, then every fuzz
# target for $(FUZZTIME).
test: lint test-unit fuzz

test-unit:
	$(GO) test -race -count=1 -timeout 20m ./...

fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) scripts/fuzz.sh

# Says what it does first: a cold build prints nothing for about a minute.
demo:
	@echo "building $(BIN) (the first build takes about a minute)..."
	@$(GOBUILD)
	@echo "starting the demo: $(BIN) demo --base-port $(BASE_PORT)"
	@$(BIN) demo --base-port $(BASE_PORT)

bench:
	$(GO) test -run='^$$' -bench=. -benchmem -timeout 30m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Regenerates protocol/pb from the schema. Needs protoc (Debian:
# protobuf-compiler); protoc-gen-go is installed at the pinned version.
# protoc-gen-go-vtproto generates the fast decoder of entries a replica
# reads its own store with (protocol.DecodeStored), for staydown.proto only.
proto:
	GOBIN=$(CURDIR)/bin $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(CURDIR)/bin $(GO) install github.com/planetscale/vtprotobuf/cmd/protoc-gen-go-vtproto@$(PROTOC_GEN_VTPROTO_VERSION)
	PATH=$(CURDIR)/bin:$$PATH protoc --go_out=. --go_opt=paths=source_relative protocol/pb/staydown.proto protocol/pb/sync.proto protocol/pb/export.proto
	PATH=$(CURDIR)/bin:$$PATH protoc --go-vtproto_out=. --go-vtproto_opt=paths=source_relative,features=unmarshal_unsafe protocol/pb/staydown.proto

clean:
	rm -rf bin
