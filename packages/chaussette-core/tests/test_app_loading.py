"""Every way of naming the application, served by a real process and asked for real."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CommandProcess, stop_cleanly, write_module

from chaussette_testing import request, start_server

LOCAL = ("--host", "127.0.0.1", "--port", "0")


def body_of(*args: str, path: str = "/", **kwargs: object) -> bytes:
    """Start a server with ``args``, return the body of one GET, stop it cleanly."""
    with start_server(*LOCAL, *args, **kwargs) as server:
        status, _, body = request(server.tcp_address, path=path)
        assert status == 200, body
        stop_cleanly(server)
        return body


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A package ``webpkg`` with a module holding an app, a factory and an argument factory."""
    package = tmp_path / "webpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    write_module(package, "site", """
        from chaussette_testing.apps import create_app

        application = create_app("from webpkg.site")

        def make(*words):
            return create_app("+".join(words) or "no arguments")
    """)
    return tmp_path


@pytest.mark.parametrize(("spec", "expected"), [
    ("chaussette.util.hello_app", b"hello world"),
    ("chaussette.util:hello_app", b"hello world"),
    ("chaussette_testing.apps:create_app()", b"hello"),
])
def test_installed_module_forms(spec: str, expected: bytes) -> None:
    assert body_of(spec) == expected


def test_default_application_is_hello_app() -> None:
    assert body_of() == b"hello world"


def test_factory_with_positional_arguments() -> None:
    assert body_of("chaussette_testing.apps:create_app", "bonjour") == b"bonjour"


@pytest.mark.parametrize(("spec", "arguments", "expected"), [
    ("webpkg.site.application", (), b"from webpkg.site"),
    ("webpkg.site:application", (), b"from webpkg.site"),
    ("webpkg.site:make()", (), b"no arguments"),
    ("webpkg.site:make", ("a", "b", "c"), b"a+b+c"),
])
def test_python_path(project: Path, spec: str, arguments: tuple[str, ...], expected: bytes) -> None:
    assert body_of("--python-path", str(project), spec, *arguments) == expected


def test_python_path_list(project: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    other = tmp_path_factory.mktemp("other")
    write_module(other, "other_app", """
        from webpkg.site import make

        app = make("found", "both")
    """)
    python_path = os.pathsep.join([str(other), str(project)])
    assert body_of("--python-path", python_path, "other_app.app") == b"found+both"


def test_current_directory_is_on_the_path(project: Path) -> None:
    assert body_of("webpkg.site.application", cwd=str(project)) == b"from webpkg.site"


def test_current_directory_with_the_console_script(project: Path) -> None:
    """The ``chaussette`` script (not ``python -m``) has its bin/ as sys.path[0]: the
    current directory must still be searched, as in 1.3."""
    script = Path(sys.executable).with_name("chaussette")
    if not script.exists():
        pytest.skip(f"no chaussette console script next to {sys.executable}")
    with CommandProcess([str(script), *LOCAL, "webpkg.site.application"], cwd=str(project)) as server:
        server.wait_serving()
        assert request(server.tcp_address)[2] == b"from webpkg.site"


PASTE_INI = """\
[app:main]
use = call:pasteapp:make_app
greeting = from paste main

[app:other]
use = call:pasteapp:make_app
greeting = from paste other

[loggers]
keys = root, pasteapp

[handlers]
keys = file

[formatters]
keys = plain

[logger_root]
level = WARNING
handlers =

[logger_pasteapp]
level = INFO
handlers = file
qualname = pasteapp

[handler_file]
class = FileHandler
args = ('%(here)s/paste.log',)
formatter = plain

[formatter_plain]
format = PASTELOG %(name)s %(message)s
"""


@pytest.fixture
def paste_project(tmp_path: Path) -> Path:
    write_module(tmp_path, "pasteapp", """
        import logging

        from chaussette_testing.apps import create_app

        def make_app(global_conf, greeting="none"):
            logging.getLogger("pasteapp").info("created with %s", greeting)
            return create_app(greeting)
    """)
    (tmp_path / "app.ini").write_text(PASTE_INI)
    return tmp_path


def test_paste_ini(paste_project: Path) -> None:
    assert body_of("paste:app.ini", cwd=str(paste_project)) == b"from paste main"
    # The ini's [loggers] section configured logging, as pserve would.
    assert (paste_project / "paste.log").read_text() == "PASTELOG pasteapp created with from paste main\n"


def test_paste_ini_named_app(paste_project: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    ini = paste_project / "app.ini"
    body = body_of("--python-path", str(paste_project), f"paste:{ini}#other", cwd=str(elsewhere))
    assert body == b"from paste other"


def test_django_project(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "django", "startproject", "mysite", str(tmp_path)], check=True,
                   timeout=60, capture_output=True)
    (tmp_path / "mysite" / "urls.py").write_text(
        "from django.http import HttpResponse\n"
        "from django.urls import path\n\n\n"
        "def hello(request):\n"
        "    return HttpResponse(f'django {request.method} {request.path}')\n\n\n"
        "urlpatterns = [path('hello/', hello)]\n")
    assert body_of("mysite.wsgi.application", path="/hello/", cwd=str(tmp_path)) == b"django GET /hello/"
