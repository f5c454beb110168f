"""The cluster simulator: a CloudSim-compatible data centre driven by consolidation policies."""
