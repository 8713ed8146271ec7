"""Core's hostile-input suite on meinheld: every case refused, as on the other backends.

meinheld 1.0.2 parses with an old, lenient copy of joyent/http-parser; the build recipe
(ci/build-meinheld) makes it strict: its fix 7 stops trailers from crashing the server,
fix 11 refuses bare-LF line ends, header lines without a colon, control characters in
values and chunk extensions, obsolete line folding and a repeated chunked coding. A
meinheld without those fixes fails here.
"""

from __future__ import annotations

import signal

from helpers import Gate, start

from chaussette_testing.client import Concurrently, request
from chaussette_testing.hostile import HostileInputSuite


class TestMeinheldHostile(HostileInputSuite):
    backend = "meinheld"

    def test_sigterm_under_load_loses_nothing(self) -> None:
        """Core's version holds 50 requests in ``time.sleep``, which meinheld does not
        patch: they would run one after the other. Here they wait on patched sockets
        (for the gate), so all 50 are in flight together when SIGTERM comes."""
        with Gate() as gate, start("--graceful-timeout", "30") as server:
            calls = Concurrently(50, lambda: request(server.tcp_address, path=f"/gate?port={gate.port}",
                                                     timeout=30))
            gate.wait_for(50)
            server.signal(signal.SIGTERM)
            server.wait_for("stopping", timeout=10)
            gate.release()
            outcomes = calls.outcomes(40)
            assert server.wait(40) == 0
            assert [r if isinstance(r, Exception) else (r[0], r[2]) for r in outcomes] == \
                [(200, b"released")] * 50
