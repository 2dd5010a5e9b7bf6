"""The one error a config file, override or setting raises: its message names the file and dotted key."""


class ConfigError(ValueError):
    """A config file or override that does not fit the dataclass tree, or settings that contradict."""
