module "odd" {
  source = "./modules/odd"
}
