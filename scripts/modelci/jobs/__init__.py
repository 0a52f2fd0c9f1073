"""Programs modelci ships to run elsewhere, in the model's own environment (where modelci is
not installed): each is a self-contained file, read as bytes and staged as it is."""
