"""Point models: each predicts a path for every series at once from the shared history."""
