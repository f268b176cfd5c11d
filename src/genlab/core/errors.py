"""User-facing errors: the CLI prints their message on one line and exits with status 2."""


class GenlabError(Exception):
    """Bad input from the user (config, data, checkpoint, argument). The message is one line
    that says what is wrong and how to fix it."""


class ConfigError(GenlabError):
    """An unknown key, a bad value, an unknown model/dataset/preset name."""


class DataError(GenlabError):
    """A missing, truncated, corrupt or inconsistent data file; the message names the file."""


class CheckpointError(GenlabError):
    """A run directory or checkpoint that is missing, incomplete or does not match its config."""


class TrainingDiverged(Exception):
    """A non-finite loss. Not bad input, so the CLI exits with status 1; the last good checkpoint
    is left in place."""
