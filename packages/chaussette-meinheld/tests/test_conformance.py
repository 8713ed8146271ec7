"""Core's conformance suite on meinheld."""

from chaussette_testing.conformance import ConformanceSuite


class TestMeinheld(ConformanceSuite):
    backend = "meinheld"
