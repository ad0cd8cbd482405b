"""The fixtures of the promote command's tests: the ones its command-line tests use (a copy of the example stacks as the
working directory; Azure through a scripted fleet read), and a repository whose tag v1.0.0 is on API versions extension
1.23.0 no longer serves (the API-version scan's)."""

from tests.fluxfleet.plan.test_api_scan import deprecated  # noqa: F401
from tests.fluxfleet.test_promote import azure, project  # noqa: F401
