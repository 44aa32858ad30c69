module "notes" {
  source = "./modules/notes"
}
