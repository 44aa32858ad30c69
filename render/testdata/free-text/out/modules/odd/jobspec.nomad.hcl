# Nomad job for odd, written by ferry render from ferry.hcl.
# Edit ferry.hcl and render again rather than editing this file.

job "odd" {
  region      = "global"
  datacenters = ["dc1"]
  namespace   = "default"
  type        = "service"

  update {
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "10s"
    healthy_deadline  = "5m"
    progress_deadline = "10m"
    auto_revert       = true
  }

  group "odd" {
    count = 1

    network {
      mode = "bridge"

      port "http" {
        to = 3000
      }
    }

    ephemeral_disk {
      sticky  = true
      migrate = true
      size    = 100
    }

    volume "config" {
      type            = "csi"
      source          = "glusterfs_odd_config"
      access_mode     = "single-node-writer"
      attachment_mode = "file-system"
      read_only       = false
    }

    service {
      name     = "odd"
      provider = "consul"
      port     = "3000"
      tags     = ["traefik.enable=true", "traefik.http.routers.odd.rule=Host(`odd.example.com`)", "traefik.http.routers.odd.entrypoints=websecure", "traefik.consulcatalog.connect=true", "x=$${y}", "{{ .Z }}", "a\"b"]

      check {
        name     = "odd-http"
        type     = "http"
        path     = "/"
        interval = "30s"
        timeout  = "5s"
        expose   = true
      }

      connect {
        sidecar_service {
          proxy {
            transparent_proxy {}
          }
        }
      }
    }

    task "litestream-restore" {
      driver = "docker"

      lifecycle {
        hook    = "prestart"
        sidecar = false
      }

      config {
        image      = "litestream/litestream:0.5.18"
        entrypoint = ["/bin/sh"]
        args       = ["$${NOMAD_TASK_DIR}/restore.sh"]
      }

      vault {}

      template {
        data        = <<EOT
# litestream v0.5 configuration for odd, written by ferry render.
logging:
  stderr: true
snapshot:
  interval: 1h
  retention: 72h
dbs:
  - path: '$${NOMAD_ALLOC_DIR}/data/db/odd.db'
    replica:
      type: s3
      bucket: 'odd-litestream'
      path: 'db'
      endpoint: 'http://minio-minio.virtual.consul:9000'
      region: 'us-east-1'
      force-path-style: true
      sync-interval: 1s
EOT
        destination = "local/litestream.yml"
        change_mode = "noop"
      }

      template {
        data        = <<EOT
LITESTREAM_ACCESS_KEY_ID={{ with secret "nomad/default/odd" }}{{ .Data.data.MINIO_ACCESS_KEY }}{{ end }}
LITESTREAM_SECRET_ACCESS_KEY={{ with secret "nomad/default/odd" }}{{ .Data.data.MINIO_SECRET_KEY }}{{ end }}
EOT
        destination = "secrets/litestream.env"
        env         = true
        change_mode = "restart"
      }

      template {
        data        = <<EOT
#!/bin/sh
# litestream-restore for odd, written by ferry render from ferry.hcl; edit that, not this.
#
# Keeps a database already on the alloc disk; otherwise restores the latest
# replica with a full integrity check. Exits 1 (Nomad retries, the app does
# not start) when the object store does not answer in time, when a replica
# exists but does not restore, or when there is no replica and the service
# has prior data. Starts empty only for a service declared no_prior_data.
set -u

alloc_dir=$${NOMAD_ALLOC_DIR:?NOMAD_ALLOC_DIR is not set}
config=$${LITESTREAM_CONFIG:-$${NOMAD_TASK_DIR:?NOMAD_TASK_DIR is not set}/litestream.yml}
health_url=$${FERRY_HEALTH_URL-'http://minio-minio.virtual.consul:9000/minio/health/live'}
wait_seconds=120
no_prior_data=false

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
	*'no matching backup files available'*) ;;
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

restore_db 'db' "$alloc_dir"/'data/db/odd.db' 's3://odd-litestream/db'
log 'done'
EOT
        destination = "local/restore.sh"
        change_mode = "noop"
      }

      resources {
        cpu        = 100
        memory     = 256
        memory_max = 512
      }
    }

    task "odd" {
      driver = "docker"

      config {
        image = "example/odd:1.0.0"

        mount {
          type     = "bind"
          source   = "../alloc/data/db"
          target   = "/config/Application Support"
          readonly = false
        }
      }

      volume_mount {
        volume      = "config"
        destination = "/config"
        read_only   = false
      }

      env {
        INTERP   = "$${HOME} and %%{ if x }"
        NEWLINE  = "a\nEOT\nb"
        QUOTE    = "say \"hi\""
        SHELL    = "`id`; $(id) '"
        TEMPLATE = "{{ env \"HOME\" }} }}"
      }

      resources {
        cpu        = 200
        memory     = 256
        memory_max = 512
      }
    }

    task "litestream" {
      driver       = "docker"
      kill_timeout = "30s"

      lifecycle {
        hook    = "poststart"
        sidecar = true
      }

      config {
        image = "litestream/litestream:0.5.18"
        args  = ["replicate", "-config", "$${NOMAD_TASK_DIR}/litestream.yml"]
      }

      vault {}

      template {
        data        = <<EOT
# litestream v0.5 configuration for odd, written by ferry render.
logging:
  stderr: true
snapshot:
  interval: 1h
  retention: 72h
dbs:
  - path: '$${NOMAD_ALLOC_DIR}/data/db/odd.db'
    replica:
      type: s3
      bucket: 'odd-litestream'
      path: 'db'
      endpoint: 'http://minio-minio.virtual.consul:9000'
      region: 'us-east-1'
      force-path-style: true
      sync-interval: 1s
EOT
        destination = "local/litestream.yml"
        change_mode = "noop"
      }

      template {
        data        = <<EOT
LITESTREAM_ACCESS_KEY_ID={{ with secret "nomad/default/odd" }}{{ .Data.data.MINIO_ACCESS_KEY }}{{ end }}
LITESTREAM_SECRET_ACCESS_KEY={{ with secret "nomad/default/odd" }}{{ .Data.data.MINIO_SECRET_KEY }}{{ end }}
EOT
        destination = "secrets/litestream.env"
        env         = true
        change_mode = "restart"
      }

      resources {
        cpu        = 100
        memory     = 128
        memory_max = 256
      }
    }
  }
}
