# Written by `ferry init` from the compose file named in source below.
# Every value is explicit; review it, then run `ferry render`.
# note: image: the compose file says sctx/overseerr:latest, which floats;
#   pinned to sctx/overseerr:1.34.0, the version ferry's Overseerr profile
#   knows. Check the version running today (docker inspect) and pin that
#   instead if it is newer: an older image may not open a database a newer
#   one has migrated
service "overseerr" {
  image         = "sctx/overseerr:1.34.0"
  port          = 5055
  config_dir    = "/app/config"
  no_prior_data = false
  apply         = "api"
  hold          = "24h"
  config_files  = ["/app/config/settings.json"]
  disposable    = ["/app/config/logs", "/app/config/cache"]
  env = {
    LOG_LEVEL = "info"
    TZ        = "Europe/London"
  }

  source {
    compose_file = "docker-compose.yml"
    project      = "downloads"
    service      = "overseerr"
    docker_host  = ""
  }

  database "db" {
    path         = "/app/config/db/db.sqlite3"
    replica_path = "db"
    user_tables  = ["user", "user_settings", "media", "media_request", "season_request", "issue", "issue_comment"]
  }

  target {
    region      = "global"
    datacenters = ["dc1"]
    namespace   = "default"
  }

  storage {
    csi {
      plugin_id       = "glusterfs"
      volume          = "glusterfs_overseerr_config"
      capacity_min    = "100MiB"
      capacity_max    = "1GiB"
      access_mode     = "single-node-writer"
      attachment_mode = "file-system"
    }
  }

  mesh {
    mode = "consul-transparent-proxy"
  }

  secrets {
    vault {
      path       = "nomad/default/overseerr"
      access_key = "MINIO_ACCESS_KEY"
      secret_key = "MINIO_SECRET_KEY"
    }
  }

  object_store {
    endpoint    = "http://minio-minio.virtual.consul:9000"
    bucket      = "overseerr-litestream"
    region      = "us-east-1"
    path_style  = true
    health_path = "/minio/health/live"
  }

  litestream {
    image             = "litestream/litestream:0.5.18"
    sync_interval     = "1s"
    snapshot_interval = "1h"
    retention         = "72h"
    wait_timeout      = "2m"
  }

  ingress {
    host       = "overseerr.example.com"
    entrypoint = "websecure"
    tags       = []
  }

  health {
    path     = "/api/v1/status"
    interval = "30s"
    timeout  = "5s"
  }

  resources "main" {
    cpu        = 200
    memory     = 256
    memory_max = 512
  }

  resources "restore" {
    cpu        = 100
    memory     = 256
    memory_max = 512
  }

  resources "replicate" {
    cpu        = 100
    memory     = 128
    memory_max = 256
  }

  drill {
    max_replica_age = "24h"
    schedule        = ""
    drain_deadline  = "5m"
  }
}
