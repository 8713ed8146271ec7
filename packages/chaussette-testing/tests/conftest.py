"""The plugin's own tests run pytest sessions of their own (``pytester``)."""

pytest_plugins = ["pytester"]
