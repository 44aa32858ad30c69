# Restore drill job for notes, written by ferry render from ferry.hcl.
# Edit ferry.hcl and render again rather than editing this file.

job "notes-restore-drill" {
  region      = "global"
  datacenters = ["dc1"]
  namespace   = "default"
  type        = "batch"

  periodic {
    crons            = ["0 4 * * 0"]
    prohibit_overlap = true
  }

  group "drill" {
    count = 1

    restart {
      attempts = 0
      mode     = "fail"
    }

    reschedule {
      attempts  = 0
      unlimited = false
    }

    network {
      mode = "bridge"

      port "drill" {}
    }

    service {
      name     = "notes-restore-drill"
      provider = "consul"
      port     = "drill"

      connect {
        sidecar_service {
          proxy {
            upstreams {
              destination_name = "minio-minio"
              local_bind_port  = 9000
            }
          }
        }
      }
    }

    task "drill" {
      driver = "docker"

      config {
        image      = "litestream/litestream:0.5.18"
        entrypoint = ["/bin/sh"]
        args       = ["$${NOMAD_TASK_DIR}/drill.sh"]
      }

      vault {}

      template {
        data        = <<EOT
# litestream v0.5 configuration for notes, written by ferry render.
logging:
  stderr: true
snapshot:
  interval: 1h
  retention: 72h
dbs:
  - path: '$${NOMAD_ALLOC_DIR}/data/main/notes.db'
    replica:
      type: s3
      bucket: 'notes-litestream'
      path: 'main'
      endpoint: 'http://127.0.0.1:9000'
      region: 'us-east-1'
      force-path-style: true
      sync-interval: 1s
EOT
        destination = "local/litestream.yml"
        change_mode = "noop"
      }

      template {
        data        = <<EOT
LITESTREAM_ACCESS_KEY_ID={{ with secret "nomad/default/notes" }}{{ .Data.data.MINIO_ACCESS_KEY }}{{ end }}
LITESTREAM_SECRET_ACCESS_KEY={{ with secret "nomad/default/notes" }}{{ .Data.data.MINIO_SECRET_KEY }}{{ end }}
EOT
        destination = "secrets/litestream.env"
        env         = true
        change_mode = "restart"
      }

      template {
        data        = <<EOT
#!/bin/sh
# restore drill for notes, written by ferry render from ferry.hcl; edit that, not this.
#
# Restores every replica into scratch space with a full integrity check and
# fails when one does not restore or is older than max_replica_age.
set -u

alloc_dir=$${NOMAD_ALLOC_DIR:?NOMAD_ALLOC_DIR is not set}
config=$${LITESTREAM_CONFIG:-$${NOMAD_TASK_DIR:?NOMAD_TASK_DIR is not set}/litestream.yml}
health_url=$${FERRY_HEALTH_URL-''}
wait_seconds=120
max_age_seconds=21600 # 6h
scratch=$${NOMAD_TASK_DIR:?NOMAD_TASK_DIR is not set}/drill

log() { printf '%s: %s\n' "$${NOMAD_TASK_NAME:-ferry}" "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

# litestream v0.5 cannot load its S3 client when AWS_CA_BUNDLE is set
# ("has no WithTransportOptions"); Go reads the same bundle from SSL_CERT_FILE.
if [ -n "$${AWS_CA_BUNDLE:-}" ]; then
	export SSL_CERT_FILE="$${SSL_CERT_FILE:-$AWS_CA_BUNDLE}"
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
			fail "the object store did not answer within $${wait_seconds}s (mesh proxy not ready, store down, or wrong credentials or bucket); exiting so Nomad retries"
		fi
		log "waiting for the object store"
		sleep 2
	done
}

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

drill_db 'main' "$alloc_dir"/'data/main/notes.db' 's3://notes-litestream/main'
log 'drill passed'
EOT
        destination = "local/drill.sh"
        change_mode = "noop"
      }

      resources {
        cpu        = 100
        memory     = 256
        memory_max = 512
      }
    }
  }
}
