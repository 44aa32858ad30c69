#!/usr/bin/env bash
# install-tools.sh installs the real parts ferry's tests and rehearsal use.
# Every version is pinned; re-running is cheap (go install and apt-get skip
# what is already present).
set -euo pipefail

export PATH="$PATH:/usr/local/go/bin:$(/usr/local/go/bin/go env GOPATH)/bin"
bin="$(go env GOPATH)/bin"

need_apt=()
command -v busybox >/dev/null || need_apt+=(busybox)
command -v sqlite3 >/dev/null || need_apt+=(sqlite3)
command -v docker-compose >/dev/null || need_apt+=(docker-compose)
if [ ${#need_apt[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ]; then
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
	else
		sudo apt-get update -qq
		sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
	fi
fi

# versitygw: a signature-checking S3 server, for integration tests.
[ -x "$bin/versitygw" ] || go install github.com/versity/versitygw/cmd/versitygw@v1.8.0

# litestream v0.5.18: the CLI the pinned image ships, for compatibility tests
# and for running the rendered restore script in `ferry rehearse`.
if ! "$bin/litestream" version 2>/dev/null | grep -q 'v0.5.18\|0.5.18'; then
	CGO_ENABLED=0 go install -ldflags "-X main.Version=v0.5.18" github.com/benbjohnson/litestream/cmd/litestream@v0.5.18
fi

# litestream v0.3.13 (needs cgo), to write v0.3 replicas ferry must read.
if [ ! -x "$bin/litestream-v0.3.13" ]; then
	tmp=$(mktemp -d)
	GOBIN="$tmp" CGO_ENABLED=1 go install github.com/benbjohnson/litestream/cmd/litestream@v0.3.13
	mv "$tmp/litestream" "$bin/litestream-v0.3.13"
	rm -rf "$tmp"
fi

# terraform, for the apply = "terraform" path (plan/apply -target). Machines
# of this kind ship one; elsewhere build the last MPL-2.0 release.
if ! command -v terraform >/dev/null; then
	go install github.com/hashicorp/terraform@v1.5.7
fi
