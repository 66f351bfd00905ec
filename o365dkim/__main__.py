"""Allow ``python -m o365dkim``."""

from o365dkim.cli.main import run

run()
