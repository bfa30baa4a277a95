"""The one exception the CLI turns into a clean message and a non-zero exit code."""


class UserError(Exception):
    """Something the user can fix: the message says what was wrong and what to do."""
