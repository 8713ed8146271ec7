"""Core's conformance suite on meinheld."""

from chaussette.testing.conformance import ConformanceSuite


class TestMeinheld(ConformanceSuite):
    backend = "meinheld"
