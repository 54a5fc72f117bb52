# common package of the SeedVR repo
