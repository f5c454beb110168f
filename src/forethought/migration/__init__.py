"""Predictive migration: pressure and benefit scores, the network map, the orchestrator."""
