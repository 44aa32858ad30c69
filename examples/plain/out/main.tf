module "radarr" {
  source = "./modules/radarr"
}
