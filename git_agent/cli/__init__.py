"""The command line: click parsing (and a fast parser for `run`), completion, the man page."""
