# Written by `ferry init` from the compose file named in source below.
# Every value is explicit; review it, then run `ferry render`.
# note: image: the compose file says lscr.io/linuxserver/radarr:latest, which
#   floats; pinned to lscr.io/linuxserver/radarr:5.26.2.10099-ls277, the
#   version ferry's Radarr profile knows. Check the version running today
#   (docker inspect) and pin that instead if it is newer: an older image
#   may not open a database a newer one has migrated
# note: made with options: mesh=none secrets=nomad host_volume=radarr-config
#   endpoint=http://192.168.1.10:9000
service "radarr" {
  image         = "lscr.io/linuxserver/radarr:5.26.2.10099-ls277"
  port          = 7878
  config_dir    = "/config"
  no_prior_data = false
  apply         = "api"
  hold          = "24h"
  config_files  = ["/config/config.xml"]
  disposable    = ["/config/logs", "/config/logs.db", "/config/MediaCover"]
  env = {
    PGID = "1000"
    PUID = "1000"
    TZ   = "Europe/London"
  }

  source {
    compose_file = "docker-compose.yml"
    project      = "plain"
    service      = "radarr"
    docker_host  = ""
  }

  database "db" {
    path         = "/config/radarr.db"
    replica_path = "db"
    user_tables  = ["Movies", "MovieFiles", "MovieMetadata", "History", "QualityProfiles", "RootFolders", "Tags", "Users"]
  }

  target {
    region      = "global"
    datacenters = ["dc1"]
    namespace   = "default"
  }

  storage {
    host_volume = "radarr-config"
  }

  mesh {
    mode = "none"
  }

  secrets {
    nomad_variable {
      path       = "nomad/jobs/radarr"
      access_key = "MINIO_ACCESS_KEY"
      secret_key = "MINIO_SECRET_KEY"
    }
  }

  object_store {
    endpoint    = "http://192.168.1.10:9000"
    bucket      = "radarr-litestream"
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

  health {
    path     = "/ping"
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
