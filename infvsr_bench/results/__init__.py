"""The run folder: its store (clip folders, tables), its record (run.json, clip.json, identity) and the
merge of any set of run folders that reports read."""
