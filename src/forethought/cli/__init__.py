"""The ``forethought`` command line."""
