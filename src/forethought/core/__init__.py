"""Core types shared by every layer: resources, units and errors."""
