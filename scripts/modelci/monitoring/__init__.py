"""Monitoring of a deployed model: reading its tables, drift per column kind, data quality,
ground truth, and the pictures a person reads."""
