package render

import (
	"fmt"
	"strings"

	"github.com/ferry-migrate/ferry"
	"github.com/ferry-migrate/ferry/config"
)

// NoReplicaMessage is what litestream v0.5.18 `restore` prints when it
// finds nothing to restore. It prints the same for an empty replica and for
// a replica whose files do not form a restorable chain (the production
// incident in REFERENCE.md), so the restore script never trusts it alone.
const NoReplicaMessage = "no matching backup files available"

// RestoreScript returns the POSIX sh script (dash in the litestream image,
// busybox sh in `ferry rehearse`) that the litestream-restore prestart task
// runs before the app starts. For each database, in order:
//
//   - the database file exists on the alloc disk (sticky ephemeral disk,
//     same node or migrated): keep it, restore nothing. A stray -wal or -shm
//     without its database file is removed, because a WAL that does not
//     belong to the database corrupts it.
//   - otherwise wait for the object store, at most s.Litestream.WaitTimeout
//     (plus one probe of at most 15s): its health URL when wget exists, and
//     always a listing of the replica by litestream itself, which proves
//     DNS, the mesh proxy, the credentials and the bucket. Never answering
//     exits 1.
//   - restore the latest replica with `litestream restore -integrity-check
//     full`; success is exit 0.
//   - restore failed: when litestream said NoReplicaMessage and
//     `litestream ltx -level all -json` lists no file at all, there is no
//     replica: exit 0 (start empty) only when s.NoPriorData, else exit 1.
//     Any other failure, including a replica that has files but does not
//     restore, exits 1: Nomad retries and the app never starts on an empty
//     database that the sidecar would then replicate over the real history.
//
// Environment: NOMAD_ALLOC_DIR and NOMAD_TASK_DIR (Nomad sets both),
// LITESTREAM_ACCESS_KEY_ID and LITESTREAM_SECRET_ACCESS_KEY (the secrets
// template); optional LITESTREAM_CONFIG (default
// $NOMAD_TASK_DIR/litestream.yml, see LitestreamConfig) and FERRY_HEALTH_URL
// (replaces the store's health URL; empty skips that probe), so `ferry
// rehearse` runs this exact text against a local S3 server. AWS_CA_BUNDLE,
// which litestream v0.5 cannot load, is moved to SSL_CERT_FILE.
//
// Every value from the spec is single-quoted; the script contains no Go
// template delimiters, so Nomad's template engine passes it through.
func RestoreScript(s *ferry.Service) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#!/bin/sh\n# %s for %s, written by ferry render from ferry.hcl; edit that, not this.\n", ferry.TaskRestore, s.Name)
	b.WriteString(restoreHeader)
	scriptPrelude(&b, s, fmt.Sprintf("no_prior_data=%t\n", s.NoPriorData))
	b.WriteString(restoreFuncs)
	b.WriteString("\n")
	for _, d := range s.Databases {
		fmt.Fprintf(&b, "restore_db %s \"$alloc_dir\"/%s %s\n", shQuote(d.Name), shQuote(AllocDBPath(s, d)), shQuote(replicaURL(s, d)))
		if FileMounted(s, d.Dir()) {
			fmt.Fprintf(&b, "mount_sources \"$alloc_dir\"/%s\n", shQuote(AllocDBPath(s, d)))
		}
	}
	b.WriteString("log 'done'\n")
	return b.String()
}

const restoreHeader = `#
# Keeps a database already on the alloc disk; otherwise restores the latest
# replica with a full integrity check. Exits 1 (Nomad retries, the app does
# not start) when the object store does not answer in time, when a replica
# exists but does not restore, or when there is no replica and the service
# has prior data. Starts empty only for a service declared no_prior_data.
set -u
`

// scriptPrelude writes the settings and helpers shared by the restore and
// drill scripts.
// settings are extra variable assignments, written with the others.
func scriptPrelude(b *strings.Builder, s *ferry.Service, settings string) {
	health := ""
	if s.ObjectStore.Endpoint != "" && s.ObjectStore.HealthPath != "" {
		health = strings.TrimSuffix(s.ObjectStore.Endpoint, "/") + s.ObjectStore.HealthPath
	}
	b.WriteString(`
alloc_dir=${NOMAD_ALLOC_DIR:?NOMAD_ALLOC_DIR is not set}
config=${LITESTREAM_CONFIG:-${NOMAD_TASK_DIR:?NOMAD_TASK_DIR is not set}/litestream.yml}
`)
	fmt.Fprintf(b, "health_url=${FERRY_HEALTH_URL-%s}\n", shQuote(health))
	fmt.Fprintf(b, "wait_seconds=%d\n", int64(s.Litestream.WaitTimeout.Seconds()))
	b.WriteString(settings)
	b.WriteString(preludeFuncs)
}

const preludeFuncs = `
log() { printf '%s: %s\n' "${NOMAD_TASK_NAME:-ferry}" "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

# litestream v0.5 cannot load its S3 client when AWS_CA_BUNDLE is set
# ("has no WithTransportOptions"); Go reads the same bundle from SSL_CERT_FILE.
if [ -n "${AWS_CA_BUNDLE:-}" ]; then
	export SSL_CERT_FILE="${SSL_CERT_FILE:-$AWS_CA_BUNDLE}"
	unset AWS_CA_BUNDLE
	log "AWS_CA_BUNDLE moved to SSL_CERT_FILE for litestream"
fi

bounded=
if command -v timeout >/dev/null 2>&1; then bounded='timeout 15'; fi

# store_ready DB: the store answers its health URL (when wget exists; the
# litestream image has none) and litestream can list DB's replica. wget is
# bounded by timeout, not -T: busybox 1.35's wget crashes with -T.
store_ready() {
	if [ -n "$health_url" ] && command -v wget >/dev/null 2>&1; then
		$bounded wget -q -O /dev/null "$health_url" || return 1
	fi
	$bounded litestream ltx -config "$config" -level 9 "$1" >/dev/null
}

# wait_for_store DB: poll until store_ready, at most wait_seconds. In a mesh
# the proxy may not be ready when a prestart task starts.
wait_for_store() {
	deadline=$(( $(date +%s) + wait_seconds ))
	until store_ready "$1"; do
		if [ "$(date +%s)" -ge "$deadline" ]; then
			fail "the object store did not answer within ${wait_seconds}s (mesh proxy not ready, store down, or wrong credentials or bucket); exiting so Nomad retries"
		fi
		log "waiting for the object store"
		sleep 2
	done
}
`

const restoreFuncs = `
# mount_sources PATH: the database, -wal and -shm files exist, because the
# app task bind-mounts each of them (its database sits beside files that
# stay on the config volume). Empty ones are what SQLite creates itself.
mount_sources() {
	for f in "$1" "$1-wal" "$1-shm"; do
		[ -e "$f" ] || : >"$f" || fail "cannot create $f"
	done
}

# restore_db NAME PATH REPLICA
restore_db() {
	name=$1 db=$2 replica=$3
	mkdir -p "$(dirname "$db")" || fail "$name: cannot create the directory of $db"
	if [ -e "$db" ]; then
		log "$name: $db is on the alloc disk; keeping it, no restore"
		return 0
	fi
	for f in "$db-wal" "$db-shm"; do
		if [ -e "$f" ]; then
			log "$name: removing stray $f (its database file is absent)"
			rm -f "$f" || fail "$name: cannot remove $f"
		fi
	done
	wait_for_store "$db"
	log "$name: restoring $db from $replica"
	if out=$(litestream restore -config "$config" -integrity-check full "$db" 2>&1); then
		printf '%s\n' "$out" >&2
		[ -s "$db" ] || fail "$name: litestream restore succeeded but $db is missing"
		log "$name: restored; integrity check passed"
		return 0
	fi
	printf '%s\n' "$out" >&2
	case $out in
	*'` + NoReplicaMessage + `'*) ;;
	*) fail "$name: restore from $replica failed; refusing to start on an empty database" ;;
	esac
	# litestream says the same for an empty replica and for files that do
	# not form a restorable chain: only an empty listing means no replica.
	files=$(litestream ltx -config "$config" -level all -json "$db") || fail "$name: cannot list $replica"
	if [ "$files" != '[]' ]; then
		fail "$name: $replica holds files but none restore; repair or re-seed it (see the runbook), never start empty"
	fi
	if [ "$no_prior_data" = true ]; then
		log "$name: no replica at $replica yet and no_prior_data = true: starting on an empty database"
		return 0
	fi
	fail "$name: no replica at $replica, and the service has prior data: seed it first (ferry migrate), or set no_prior_data = true for a new service"
}
`

// DrillScript returns the sh script of the scheduled restore drill: for
// each database, restore the latest replica into the task's scratch space
// with a full integrity check, and fail when that fails or when the newest
// file in the replica is older than s.Drill.MaxReplicaAge. It never touches
// the live database. Same environment as RestoreScript.
func DrillScript(s *ferry.Service) string {
	var b strings.Builder
	fmt.Fprintf(&b, "#!/bin/sh\n# restore drill for %s, written by ferry render from ferry.hcl; edit that, not this.\n", s.Name)
	b.WriteString("#\n# Restores every replica into scratch space with a full integrity check and\n# fails when one does not restore or is older than max_replica_age.\nset -u\n")
	scriptPrelude(&b, s, fmt.Sprintf("max_age_seconds=%d # %s\nscratch=${NOMAD_TASK_DIR:?NOMAD_TASK_DIR is not set}/drill\n",
		int64(s.Drill.MaxReplicaAge.Seconds()), config.FormatDuration(s.Drill.MaxReplicaAge)))
	b.WriteString(drillFuncs)
	b.WriteString("\n")
	for _, d := range s.Databases {
		fmt.Fprintf(&b, "drill_db %s \"$alloc_dir\"/%s %s\n", shQuote(d.Name), shQuote(AllocDBPath(s, d)), shQuote(replicaURL(s, d)))
	}
	b.WriteString("log 'drill passed'\n")
	return b.String()
}

const drillFuncs = `
# drill_db NAME PATH REPLICA: PATH only names the database in the config.
drill_db() {
	name=$1 db=$2 replica=$3
	out_db="$scratch/$name.sqlite3"
	rm -rf "$scratch" && mkdir -p "$scratch" || fail "$name: cannot prepare $scratch"
	wait_for_store "$db"
	litestream restore -config "$config" -integrity-check full -o "$out_db" "$db" ||
		fail "$name: $replica does not restore; repair or re-seed it now, before it is needed"
	# RFC 3339 UTC timestamps sort as text.
	newest=$(TZ=UTC litestream ltx -config "$config" -level all -json "$db" |
		sed -n 's/.*"timestamp": *"\([^"]*\)".*/\1/p' | sort | tail -n 1)
	[ -n "$newest" ] || fail "$name: $replica lists no files"
	oldest_ok=$(date -u -d "@$(( $(date +%s) - max_age_seconds ))" +%Y-%m-%dT%H:%M:%SZ) ||
		fail "date cannot compute the age limit"
	if [ "$(printf '%s\n%s\n' "$newest" "$oldest_ok" | sort | head -n 1)" = "$newest" ] && [ "$newest" != "$oldest_ok" ]; then
		fail "$name: newest file in $replica is from $newest, older than $oldest_ok: replication has stopped"
	fi
	log "$name: restored with integrity check; newest replica file $newest"
	rm -rf "$scratch"
}
`
