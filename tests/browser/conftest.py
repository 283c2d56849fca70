"""The web server fixture of the web tests, shared with the browser tests."""

from tests.web.conftest import web  # noqa: F401
