"""The one exception type the CLI turns into a clean message (no traceback)."""


class AlrunError(Exception):
    """A problem the user can fix: the message names the file, line or key, and the fix."""
