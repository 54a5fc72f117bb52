# data package of the SeedVR repo (imported from projects/: needs PYTHONPATH at the repo root)
