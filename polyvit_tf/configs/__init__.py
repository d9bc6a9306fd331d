"""Configs (ml_collections): base building blocks, the paper set-ups, demo and tiny."""
