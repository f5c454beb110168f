"""Predictive allocation: scaling policies, the allocation manager, and rightsizing baselines."""
