# Extra golden case: scheduled restore drill, Consul upstreams instead of a
# transparent proxy, a new service without prior data, no ingress.
service "notes" {
  image         = "example/notes:2.4.1"
  port          = 8080
  config_dir    = "/srv/notes"
  no_prior_data = true

  source {
    service = "notes"
  }

  database "main" {
    path = "/srv/notes/data/notes.db"
  }

  mesh {
    mode = "consul-upstreams"
    upstream "minio-minio" {
      local_port = 9000
    }
  }

  object_store {
    endpoint = "http://127.0.0.1:9000"
  }

  drill {
    schedule        = "0 4 * * 0"
    max_replica_age = "6h"
  }
}
