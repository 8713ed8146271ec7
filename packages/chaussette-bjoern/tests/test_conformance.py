"""Core's conformance suite on bjoern, unchanged.

Stock bjoern 3.2.2 answered only the last of several requests sent together; the fixed
build (ci/build-bjoern, fix 1) answers each in order, so core's pipelining tests run as
they are.
"""

from chaussette_testing.conformance import ConformanceSuite


class TestBjoern(ConformanceSuite):
    backend = "bjoern"
