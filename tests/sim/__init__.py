"""Tests of the cluster simulator: power models, overload tests, the data centre, metrics."""
