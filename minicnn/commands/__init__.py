"""Built-in subcommands of the ``minicnn`` command line, registered through ``minicnn_commands``."""
