"""A Socket.IO chat room, served by Chaussette's socketio backend.

Run it from the repository root (needs ``pip install chaussette-socketio``):

    chaussette --backend socketio --port 8080 examples.socketio_chat.chat.app

then open http://localhost:8080/ in two browser windows. The page loads the Socket.IO
JavaScript client (version 4) from its CDN; any Socket.IO 4 client can join the room,
python-socketio's too:

    import socketio
    client = socketio.Client()
    client.on("message", print)
    client.connect("http://localhost:8080")
    client.call("join", "ada")      # {'ok': True, 'nicknames': ['ada']}
    client.call("message", "hello") # everyone else in the room gets it

Events, client to server (the answer is the acknowledgement):
    join(nickname)  -> {"ok": True, "nicknames": [...]} or {"ok": False, "error": "..."}
    message(text)   -> {"ok": True} or {"ok": False, "error": "..."}
server to clients:
    message({"nickname": ..., "text": ...})  what someone else said
    announcement(text)                        someone joined or left

The room lives in this one process. Served by several processes (``--fd`` with Circus'
``numprocesses``), clients of one would not see the others: python-socketio needs a
message queue (``client_manager``) and the load balancer sticky sessions for that.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

import socketio

#: The longest nickname and message kept (longer ones are cut).
MAX_NICKNAME, MAX_TEXT = 32, 1000
ROOM = "chat"

sio = socketio.Server(async_mode="gevent")
#: Socket.IO session id -> nickname, for those who joined.
nicknames: dict[str, str] = {}


@sio.event
def join(sid: str, nickname: Any) -> dict:
    nickname = str(nickname).strip()[:MAX_NICKNAME]
    if sid in nicknames:
        return {"ok": False, "error": f"you already joined as {nicknames[sid]}"}
    if not nickname:
        return {"ok": False, "error": "choose a nickname"}
    if nickname in nicknames.values():
        return {"ok": False, "error": f"{nickname} is taken"}
    nicknames[sid] = nickname
    sio.enter_room(sid, ROOM)
    sio.emit("announcement", f"{nickname} joined", room=ROOM, skip_sid=sid)
    return {"ok": True, "nicknames": sorted(nicknames.values())}


@sio.event
def message(sid: str, text: Any) -> dict:
    if sid not in nicknames:
        return {"ok": False, "error": "join first"}
    said = {"nickname": nicknames[sid], "text": str(text)[:MAX_TEXT]}
    sio.emit("message", said, room=ROOM, skip_sid=sid)
    return {"ok": True}


@sio.event
def disconnect(sid: str, reason: str) -> None:
    nickname = nicknames.pop(sid, None)
    if nickname is not None:
        sio.emit("announcement", f"{nickname} left", room=ROOM)


PAGE = (Path(__file__).parent / "index.html").read_bytes()


def page(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """The chat page on /, a plain WSGI route next to Socket.IO's /socket.io/."""
    if environ.get("PATH_INFO", "/") != "/":
        body = b"Not Found\n"
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(PAGE)))])
    return [PAGE]


app = socketio.WSGIApp(sio, page)
