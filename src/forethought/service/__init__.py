"""The service a long run exposes: a REST API and Prometheus metrics (``forethought[service]``)."""
