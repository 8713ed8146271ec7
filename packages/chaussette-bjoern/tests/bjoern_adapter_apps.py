"""``bjoern_apps`` served through the backend's Python adapter, as on a bjoern without
chaussette's mark (stock bjoern): importing this module hides the mark of the build the
tests run on. The backend asks for it once the application is imported."""

from __future__ import annotations

import _bjoern
from bjoern_apps import app

del _bjoern.CHAUSSETTE_WSGI

__all__ = ["app"]
