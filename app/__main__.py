"""``python -m drainer``: the same command line as ``drainer``."""

from drainer.cli import main

if __name__ == "__main__":
    main()
