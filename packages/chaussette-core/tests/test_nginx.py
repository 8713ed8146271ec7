"""Behind a real nginx: Debian's nginx, started here on loopback with its configuration,
pid file, logs and temporary directories in the test's own directory, proxies to a
chaussette server that trusts it (``--forwarded-allow-ips 127.0.0.1``). nginx says
``X-Forwarded-Proto: https``, as a proxy ending TLS would, while it listens in plain HTTP.

The application is a Django view building an absolute redirect URL, the way an
application behind a proxy gets it wrong: it must say ``https://`` and carry the
client's address, with no proxy setting in Django at all.

nginx comes from ci/lib.sh (``ensure_system_tools``); when it is missing the fixture
installs it (as root, with apt-get), and the tests skip, saying why, only if that fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import env_with, write_module

from chaussette_testing.client import read_responses
from chaussette_testing.process import ServerProcess, free_port, start_server

SITE = '''
"""A Django site of one view, configured in code (no settings module, no database)."""
import django
from django.conf import settings

settings.configure(DEBUG=False, SECRET_KEY="test-nginx", ALLOWED_HOSTS=["shop.example"],
                   ROOT_URLCONF=__name__, MIDDLEWARE=[], INSTALLED_APPS=[])
django.setup()

from django.core.wsgi import get_wsgi_application
from django.http import HttpResponseRedirect
from django.urls import path


def checkout(request):
    """Sends the client on to an absolute URL, naming who it thinks the client is."""
    response = HttpResponseRedirect(request.build_absolute_uri(f"/welcome?client={request.META['REMOTE_ADDR']}"))
    response["X-Secure"] = str(request.is_secure())
    response["X-Peer"] = request.META["chaussette.peer"][0]
    response["X-Seen-Forwarded-For"] = request.META.get("HTTP_X_FORWARDED_FOR", "-")
    response["X-Seen-Forwarded"] = request.META.get("HTTP_FORWARDED", "-")
    return response


urlpatterns = [path("checkout", checkout)]
application = get_wsgi_application()
'''

NGINX_CONF = """
daemon off;
master_process off;
pid {root}/nginx.pid;
error_log {root}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_bind 127.0.0.1;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto https;
        }}
    }}
}}
"""


def find_nginx() -> str | None:
    found = shutil.which("nginx")
    if found is None and os.access("/usr/sbin/nginx", os.X_OK):
        found = "/usr/sbin/nginx"  # Debian's, off a non-root PATH
    return found


def install_nginx() -> str:
    """apt-get install nginx, as ci/lib.sh would; returns why it could not."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return "nginx is not installed (and this is no Debian root shell to install it): apt-get install nginx"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", "DPkg::Lock::Timeout=120"]
    try:
        for command in (["apt-get", *lock, "update", "-qq"], ["apt-get", *lock, "install", "-y", "-qq", "nginx"]):
            subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=True,
                           stdin=subprocess.DEVNULL)
    except subprocess.CalledProcessError as exc:
        return f"apt-get install nginx failed: {exc.stderr.strip()[-300:]}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"apt-get install nginx failed: {exc}"
    return "apt-get installed nginx, but no nginx binary is on PATH or in /usr/sbin"


@pytest.fixture(scope="module")
def nginx_binary() -> str:
    found = find_nginx()
    if found is None:
        why = install_nginx()
        found = find_nginx()
        if found is None:
            print(f"test_nginx skipped: {why}", file=sys.stderr)
            pytest.skip(why)
    return found


@pytest.fixture(scope="module")
def behind_nginx(nginx_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Any]]:
    """(nginx's port, the chaussette server) with nginx in front of it."""
    root = tmp_path_factory.mktemp("nginx")
    write_module(root, "nginx_site", SITE)
    with start_server("--host", "127.0.0.1", "--port", "0", "--forwarded-allow-ips", "127.0.0.1",
                      "nginx_site.application", env=env_with(root)) as server:
        port = free_port()
        conf = root / "nginx.conf"
        conf.write_text(NGINX_CONF.format(root=root, port=port, upstream=server.tcp_address[1]))
        proxy = subprocess.Popen([nginx_binary, "-p", str(root), "-e", str(root / "error.log"), "-c", str(conf)],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            wait_listening(port, proxy, root)
            yield port, server
        finally:
            proxy.terminate()  # by pid: nginx's fast shutdown
            try:
                proxy.wait(10)
            except subprocess.TimeoutExpired:
                proxy.kill()
                proxy.wait(10)
            if proxy.stdout is not None:
                proxy.stdout.close()


def wait_listening(port: int, proxy: subprocess.Popen, root: Path, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proxy.poll() is not None:
            output = proxy.stdout.read().decode(errors="replace") if proxy.stdout else ""
            error_log = (root / "error.log").read_text() if (root / "error.log").exists() else ""
            raise AssertionError(f"nginx exited ({proxy.returncode}):\n{output}\n{error_log}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nginx not listening on {port} within {timeout}s")


def through_nginx(port: int, source: str, *headers: str) -> dict:
    """GET /checkout through nginx from ``source`` (a loopback address of this host), with
    extra raw header lines; the response's headers."""
    with socket.socket() as sock:
        sock.settimeout(20)
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", port))
        head = "".join(f"{line}\r\n" for line in ("GET /checkout HTTP/1.1", "Host: shop.example", *headers,
                                                   "Connection: close"))
        sock.sendall(head.encode() + b"\r\n")
        response, = read_responses(sock, ["GET"])
    assert response.status == 302, (response.status, response.body[:500])
    return response.headers


def test_django_redirect_is_https_with_the_client_address(behind_nginx: tuple[int, ServerProcess]) -> None:
    port, _ = behind_nginx
    headers = through_nginx(port, "127.0.0.1")
    assert headers["location"] == "https://shop.example/welcome?client=127.0.0.1"
    assert headers["x-secure"] == "True"
    assert headers["x-peer"] == "127.0.0.1"  # nginx, kept in chaussette.peer
    assert headers["x-seen-forwarded-for"] == "127.0.0.1"


def test_spoofed_chain_sent_to_nginx_gives_the_real_client(behind_nginx: tuple[int, ServerProcess]) -> None:
    """nginx appends the address it was connected from to what the client sent; walking
    back from nginx (trusted), the first untrusted hop is that address. The client comes
    from 127.0.0.2 here: a client on 127.0.0.1 would be at a trusted address, and a
    trusted hop is walked past like any proxy of ours."""
    port, _ = behind_nginx
    headers = through_nginx(port, "127.0.0.2", "X-Forwarded-For: 6.6.6.6, 10.0.0.1",
                            "X-Forwarded-Proto: http", "Forwarded: for=6.6.6.6;proto=http")
    assert headers["location"] == "https://shop.example/welcome?client=127.0.0.2"
    assert headers["x-secure"] == "True"
    assert headers["x-peer"] == "127.0.0.1"
    assert headers["x-seen-forwarded-for"] == "6.6.6.6, 10.0.0.1, 127.0.0.2"


def test_forwarded_header_from_the_client_is_not_read(behind_nginx: tuple[int, ServerProcess]) -> None:
    """nginx passes a client's ``Forwarded`` header on untouched: read, it would name any
    client it liked. It is not among the default ``--forwarded-headers``, so the layer
    removes it even from nginx's requests."""
    port, server = behind_nginx
    headers = through_nginx(port, "127.0.0.2", 'Forwarded: for="[2001:db8::6]";proto=http')
    assert headers["location"] == "https://shop.example/welcome?client=127.0.0.2"
    assert headers["x-seen-forwarded"] == "-"
    assert "Trusting forwarded headers (x-forwarded-for, x-forwarded-proto) from 127.0.0.1" in server.output
