"""Tests of the forecasting engine, its models, calibration, anomalies and evaluation."""
