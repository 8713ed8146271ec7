"""Core's per-request layers are composed from the settings: none when all are off."""

from __future__ import annotations

import logging
from dataclasses import fields
from typing import Any

from chaussette import layers
from chaussette.lifecycle import Lifecycle
from chaussette.settings import CORE_SETTINGS, Config, build_config

LIFECYCLE = Lifecycle(30, logging.getLogger("test_layers"))


def app(environ: dict, start_response: Any) -> list[bytes]:
    start_response("200 OK", [])
    return [b""]


def test_no_layer_when_every_setting_is_off() -> None:
    assert layers.wrap(app, build_config({}), LIFECYCLE) is app


def test_layers_compose_outermost_first() -> None:
    seen: list[str] = []

    def named(name: str) -> layers.Layer:
        def build(inner: Any, config: Config, lifecycle: Lifecycle) -> Any:
            seen.append(name)
            return (name, inner)
        return layers.Layer("access_log", build)

    config = build_config({"access_log": "-"})
    assert layers.wrap(app, config, LIFECYCLE, (named("outer"), named("inner"))) == ("outer", ("inner", app))
    assert seen == ["inner", "outer"]


def test_config_has_a_typed_attribute_for_every_core_setting() -> None:
    attributes = {field.name for field in fields(Config)} - {"extra", "explicit"}
    assert attributes == {setting.name for setting in CORE_SETTINGS}
    config = build_config({"port": "0", "spawn": "3"})
    assert (config.port, config.spawn, config.extra) == (0, 3, {})
