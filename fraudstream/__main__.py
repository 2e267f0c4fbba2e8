"""``python -m fraudstream`` is the ``fraudstream`` command."""

from fraudstream.cli import main

if __name__ == "__main__":
    main()
