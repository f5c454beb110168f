"""``python -m forethought``: the same command line as ``forethought``."""

from forethought.cli.main import main

if __name__ == "__main__":
    main(prog_name="forethought")
