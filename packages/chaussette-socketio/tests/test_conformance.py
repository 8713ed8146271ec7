"""Core's conformance suite on the socketio backend: a plain WSGI application is simply served."""

from chaussette_testing.conformance import ConformanceSuite


class TestSocketIO(ConformanceSuite):
    backend = "socketio"
