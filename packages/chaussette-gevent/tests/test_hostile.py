"""Core's hostile-input suite, once per backend name this package registers.

pywsgi's own head parser is lenient (http.client rules); the handler reads every head
with core's strict ``chaussette.framing`` parser instead, and pywsgi (gevent >= 25.4.1)
decodes chunked bodies. These runs prove both.
"""

from chaussette_testing.hostile import HostileInputSuite


class TestGeventHostile(HostileInputSuite):
    backend = "gevent"


class TestFastGeventHostile(HostileInputSuite):
    backend = "fastgevent"


class TestGeventWebSocketHostile(HostileInputSuite):
    backend = "geventwebsocket"


class TestGeventWs4pyHostile(HostileInputSuite):
    backend = "geventws4py"
