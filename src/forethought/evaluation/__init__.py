"""Evaluation: backtests, metrics and reports."""
