"""Enable DKIM signing for Microsoft 365 domains, end to end."""

__version__ = "0.1.0"
