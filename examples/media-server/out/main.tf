module "plex" {
  source = "./modules/plex"
}
