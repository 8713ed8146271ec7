"""The pytest plugin (entry point ``pytest11``): fixtures the shared suites need."""
