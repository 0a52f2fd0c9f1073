"""The config: `mlops.yaml` (its one definition, loader and value checks), the platform's
settings from the CI environment, and every name the product derives. Pure: no I/O beyond
reading the config file."""
