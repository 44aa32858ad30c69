# The two set-up commands of README.md. Both install what they need first
# (scripts/install-tools.sh is idempotent and pins every version).
export PATH := $(PATH):/usr/local/go/bin:$(HOME)/go/bin

.PHONY: rehearse test tools build

tools:
	bash scripts/install-tools.sh

# ferry's main job on the bundled example: no cluster, no network.
rehearse: tools
	go run ./cmd/ferry rehearse -f examples/overseerr/ferry.hcl

# The whole test suite. FERRY_REQUIRE_REAL=1 turns skips for missing real
# parts into failures (CI sets it).
test: tools
	go vet ./...
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -o /dev/null ./cmd/ferry
	go test -timeout 45m ./...

# Static binaries for both architectures the cluster runs.
build:
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -o bin/ferry-linux-amd64 ./cmd/ferry
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -o bin/ferry-linux-arm64 ./cmd/ferry
