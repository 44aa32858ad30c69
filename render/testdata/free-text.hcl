# Extra golden case: free-text values that would inject HCL, Go templates or
# shell if written unescaped, and a database in a path with spaces.
service "odd" {
  image      = "example/odd:1.0.0"
  port       = 3000
  config_dir = "/config"

  env = {
    QUOTE    = "say \"hi\""
    INTERP   = "$${HOME} and %%{ if x }"
    TEMPLATE = "{{ env \"HOME\" }} }}"
    SHELL    = "`id`; $(id) '"
    NEWLINE  = "a\nEOT\nb"
  }

  source {
    service = "odd"
  }

  database "db" {
    path = "/config/Application Support/odd.db"
  }

  ingress {
    host = "odd.example.com"
    tags = ["x=$${y}", "{{ .Z }}", "a\"b"]
  }
}
