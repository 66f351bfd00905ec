"""The command-line interface: parses options into settings and calls the library."""
