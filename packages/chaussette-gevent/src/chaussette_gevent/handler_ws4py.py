"""The ``geventws4py`` backend's handler: ws4py's on Chaussette's handler."""

from ws4py.server.geventserver import WebSocketWSGIHandler

from chaussette_gevent.protocol import Handler


class Ws4pyHandler(Handler, WebSocketWSGIHandler):
    """Serves a ``ws4py.server.wsgiutils.WebSocketWSGIApplication``: after its handshake
    the websocket runs through ``server.pool.track`` (see ``serving.HandlerPool``)."""
