"""Applications on top of everything: the ``dropout-sim`` command line."""
