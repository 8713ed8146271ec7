"""The default backend: a threaded HTTP/1.1 WSGI server using only the standard library.

The stdlib's own ``wsgiref.simple_server`` speaks HTTP/1.0 only (no keep-alive, no
chunked request bodies), serves one request at a time and parses headers leniently, so
this backend keeps the name for 1.3 compatibility but brings its own small server:
one thread per connection, strict framing from ``chaussette.framing``, keep-alive,
pipelining, chunked bodies both ways, and a graceful stop that drains in-flight requests.
"""
