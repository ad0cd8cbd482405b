"""The fixture of the preflight command's tests: the one its command-line tests use (ARM through a scripted transport)."""

from tests.fluxfleet.test_preflight_cli import azure  # noqa: F401
