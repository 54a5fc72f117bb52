# ldm package of the MGLD-VSR repo (no setup.py: needs PYTHONPATH at the repo root)
