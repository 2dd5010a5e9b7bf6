"""Prefect wiring of the rge stages. Nothing in rge_core imports from here."""
