"""Every request and response type of the API, generated from its OpenAPI document."""

from .generated.models import *  # noqa: F401,F403
from .generated.models import __all__  # noqa: F401
