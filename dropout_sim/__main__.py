"""``python -m dropout_sim`` is the same as the ``dropout-sim`` command."""

from .app.cli import main

if __name__ == "__main__":
    main()
