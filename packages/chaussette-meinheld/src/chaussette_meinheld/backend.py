"""The ``meinheld`` backend: meinheld's C event loop (picoev + greenlets) on core's sockets.

This module only declares the backend and maps core's options onto meinheld's knobs:
importing it must stay cheap, so meinheld itself is imported in ``check()``, ``patch()``
and ``serve()`` only.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

from chaussette.backends import Backend, Capabilities
from chaussette.errors import BackendError
from chaussette.lifecycle import Lifecycle
from chaussette.settings import Setting, positive_int
from chaussette.sockets import Listener

#: picoev's timer wheel has 128 one-second slots: a longer timeout silently fires at ~127 s,
#: so core refuses a longer ``--keep-alive`` (``Capabilities.max_keep_alive``).
MAX_TIMEOUT = 127
#: meinheld's own defaults, kept.
MAX_CONTENT_LENGTH = 16 * 1024 * 1024
CLIENT_BODY_BUFFER_SIZE = 500 * 1024
#: Default size of picoev's fd table when the open-files limit is larger (see ``fd_table``).
MAX_FD = 65536


class MeinheldBackend(Backend):
    name = "meinheld"
    summary = "meinheld: C event loop (picoev) with greenlets, monkey-patched sockets and time.sleep"
    capabilities = Capabilities(monkey_patch=True, max_keep_alive=MAX_TIMEOUT, one_loop=True)
    settings = (
        Setting("meinheld_max_content_length", "Largest request body accepted (larger: 413).",
                default=MAX_CONTENT_LENGTH, convert=positive_int, flags=("--meinheld-max-content-length",),
                metavar="BYTES"),
        Setting("meinheld_client_body_buffer_size", "Request bodies larger than this are spooled "
                "to a temporary file instead of memory.",
                default=CLIENT_BODY_BUFFER_SIZE, convert=positive_int,
                flags=("--meinheld-client-body-buffer-size",), metavar="BYTES"),
        Setting("meinheld_max_fd", "Size of meinheld's file-descriptor table: at most this many "
                "connections, listeners included. The open-files soft limit is lowered to it "
                "if higher, because meinheld corrupts memory on a larger fd "
                f"(default: the open-files soft limit, at most {MAX_FD}).",
                convert=positive_int, flags=("--meinheld-max-fd",), metavar="N"),
    )

    def check(self) -> None:
        """Refuse a meinheld that is not chaussette's build (see ``chaussette_meinheld.library``):
        the application is handed to it directly."""
        from chaussette_meinheld import library

        verdict = library.inspect()
        if verdict.problem is not None:
            raise BackendError(library.refusal(verdict))

    def patch(self) -> None:
        """``socket``, as meinheld patches it, and ``time.sleep`` (see ``sleep``); not
        ``select``, ``threading``..., which meinheld has no cooperative version of."""
        import time

        from meinheld import patch

        from chaussette_meinheld.sleep import cooperative

        patch.patch_all()
        time.sleep = cooperative(time.sleep)

    def keep_alive(self) -> int:
        """meinheld's keep-alive in whole seconds, 0 for off (meinheld's own default is off)."""
        return math.ceil(self.config.keep_alive)

    def serve(self, app: Callable[..., Any], listeners: Sequence[Listener], lifecycle: Lifecycle) -> None:
        from chaussette.http import limits
        from chaussette_meinheld.serving import Knobs, MeinheldLoop, fd_table

        extra = self.config.extra
        knobs = Knobs(
            keep_alive=self.keep_alive(),
            max_content_length=extra["meinheld_max_content_length"],
            client_body_buffer_size=extra["meinheld_client_body_buffer_size"],
            max_fd=fd_table(extra["meinheld_max_fd"], MAX_FD, self.log),
            request_limits=limits(self.config),
        )
        MeinheldLoop(app, listeners, self.log, knobs).run(lifecycle)
