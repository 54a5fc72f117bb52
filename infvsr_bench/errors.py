"""User-facing errors: each prints as one clear line, never as a deep traceback."""


class InfvsrError(Exception):
    """Base of every error the CLI reports as a single line."""


class ConfigError(InfvsrError):
    """A bad configuration value, unknown name or unusable path."""


class UnknownNameError(ConfigError):
    """A name that is not in a registry (the message carries a 'did you mean')."""


class VideoReadError(InfvsrError):
    """A video or frame folder that is missing, unreadable or corrupt."""


class ClipError(InfvsrError):
    """A problem with one clip (bad input, method output): the run goes on with the others."""
