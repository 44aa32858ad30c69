# Written by `ferry init` from the compose file named in source below.
# Every value is explicit; review it, then run `ferry render`.
# note: env: left out PLEX_CLAIM: the names look secret, and ferry.hcl must
#   not hold secret values; give them to the job from Vault or Nomad
#   Variables
# note: image: the compose file says plexinc/pms-docker:latest, which floats;
#   pinned to plexinc/pms-docker:1.41.6.9685-d301f511a, the version
#   ferry's Plex Media Server profile knows. Check the version running
#   today (docker inspect) and pin that instead if it is newer: an older
#   image may not open a database a newer one has migrated
service "plex" {
  image         = "plexinc/pms-docker:1.41.6.9685-d301f511a"
  port          = 32400
  config_dir    = "/config"
  no_prior_data = false
  apply         = "api"
  hold          = "24h"
  config_files  = ["/config/Library/Application Support/Plex Media Server/Preferences.xml"]
  disposable    = ["/config/Library/Application Support/Plex Media Server/Cache", "/config/Library/Application Support/Plex Media Server/Logs", "/config/Library/Application Support/Plex Media Server/Crash Reports"]
  env = {
    PLEX_GID = "1000"
    PLEX_UID = "1000"
    TZ       = "Europe/London"
  }

  source {
    compose_file = "docker-compose.yml"
    project      = "media"
    service      = "plex"
    docker_host  = ""
  }

  database "library" {
    path         = "/config/Library/Application Support/Plex Media Server/Plug-in Support/Databases/com.plexapp.plugins.library.db"
    replica_path = "library"
    user_tables  = ["accounts", "library_sections", "metadata_items", "media_items", "media_parts", "metadata_item_settings", "metadata_item_views"]
  }

  database "blobs" {
    path         = "/config/Library/Application Support/Plex Media Server/Plug-in Support/Databases/com.plexapp.plugins.library.blobs.db"
    replica_path = "blobs"
    user_tables  = ["blobs"]
  }

  target {
    region      = "global"
    datacenters = ["dc1"]
    namespace   = "default"
  }

  storage {
    csi {
      plugin_id       = "glusterfs"
      volume          = "glusterfs_plex_config"
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
      path       = "nomad/default/plex"
      access_key = "MINIO_ACCESS_KEY"
      secret_key = "MINIO_SECRET_KEY"
    }
  }

  object_store {
    endpoint    = "http://minio-minio.virtual.consul:9000"
    bucket      = "plex-litestream"
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
    host       = "plex.example.com"
    entrypoint = "websecure"
    tags       = []
  }

  health {
    path     = "/identity"
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
