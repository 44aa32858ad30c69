module "overseerr" {
  source = "./modules/overseerr"
}
