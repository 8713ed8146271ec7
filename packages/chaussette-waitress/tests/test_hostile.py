"""Core's hostile-input suite on waitress.

waitress is threaded and holds at most ``connection_limit`` connections (100 by
default); past it, new clients wait in the listen queue, so the slowloris case raises
the limit the way a deployment expecting slow clients should.
"""

from chaussette_testing.hostile import HostileInputSuite


class TestWaitressHostile(HostileInputSuite):
    backend = "waitress"
    slowloris_args = ("--waitress-connection-limit", "1000")
