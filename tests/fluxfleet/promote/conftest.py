"""The fixtures of the promote command's tests: the ones its command-line tests use (a copy of the example stacks as the
working directory; Azure through a scripted fleet read)."""

from tests.fluxfleet.test_promote import azure, project  # noqa: F401
