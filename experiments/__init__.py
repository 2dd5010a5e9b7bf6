"""The paper's claims, reproduced through the pipeline (`python -m experiments.claims`)."""
