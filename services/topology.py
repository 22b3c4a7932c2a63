"""Transitional alias of ``services.platform.topology`` for deploy/create_topics.py (owned by the deploy work);
remove once that script imports ``services.platform.topology``."""

from services.platform.topology import *  # noqa: F403
from services.platform.topology import create_topics  # noqa: F401  (the name deploy/create_topics.py uses)
