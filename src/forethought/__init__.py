"""forethought: predict every VM's demand as a distribution and act before it arrives."""

__version__ = "0.1.0"
