# trivy (used by `regctl scan`) imports encoding/json/v2, which only builds with this experiment.
# Every go command of this project needs it: build, test, vet, install.
export GOEXPERIMENT := jsonv2
# Static binaries; nothing in regctl needs cgo.
export CGO_ENABLED := 0

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo none)
DATE    ?= $(shell git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)
FUZZTIME ?= 20s

# The packages that run work concurrently (backup's parallel transfers and lock, replicate's copies, the registry
# listing, lifecycle apply, the admission webhook, the metrics collector, the in-process CLI): run a second time under the race detector, which
# needs cgo (gcc), unlike the static build.
RACE_PKGS ?= ./internal/backup/... ./internal/replicate/... ./internal/registry/... ./internal/lifecycle/... ./internal/admission/... ./internal/metrics/... ./cmd/regctl/...
# staticcheck (honnef.co/go/tools v0.8.2): .ci/run installs it; elsewhere it is taken from PATH.
STATICCHECK ?= $(shell command -v staticcheck 2>/dev/null || echo $(HOME)/.cache/regctl-tools/bin/staticcheck)

.PHONY: all build test unit race lint bench demo install fuzz clean

all: build

# regctl is the light build (-tags regctl_lite: no trivy, so every command starts fast); its scan
# commands run in regctl-scan beside it, the full build of the same command tree with trivy linked in.
build: ## build bin/regctl and its scanner companion bin/regctl-scan
	$(GO) build -tags regctl_lite -ldflags '$(LDFLAGS)' -o bin/regctl ./cmd/regctl
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/regctl-scan ./cmd/regctl

test: lint unit race ## everything CI runs: lint, every test (fuzz seed corpora included), then the concurrent packages under -race

unit:
	$(GO) test -count=1 -timeout 20m ./...

race: ## the concurrent packages again under the race detector (needs gcc)
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 30m $(RACE_PKGS)

lint: ## gofmt + go vet + staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags regctl_lite ./cmd/regctl
	@[ -x "$(STATICCHECK)" ] || { echo "staticcheck not found: go install honnef.co/go/tools/cmd/staticcheck@v0.8.2"; exit 1; }
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags regctl_lite ./cmd/regctl

bench: build ## Go benchmarks (speed and memory), side by side with peer tools where installed; see docs/benchmarks.md
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./...

demo: build ## start the embedded registry on 127.0.0.1:5000, push samples, list them, stop
	./scripts/demo.sh

install: build ## install regctl and regctl-scan into $(GOBIN), else $(GOPATH)/bin
	@dest="$$($(GO) env GOBIN)"; [ -n "$$dest" ] || dest="$$($(GO) env GOPATH)/bin"; \
	  mkdir -p "$$dest" && install -m 0755 bin/regctl bin/regctl-scan "$$dest"/ && echo "installed regctl and regctl-scan in $$dest"

fuzz: ## run every fuzz target for FUZZTIME each
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin dist
