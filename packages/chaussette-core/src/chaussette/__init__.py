"""Chaussette: a WSGI server that serves on sockets a process manager already opened.

Kept free of imports on purpose: gevent, eventlet and meinheld must monkey-patch before
the user's application (and anything threading-heavy) is imported.
"""

__version__ = "2.0.0"
