"""The one exception type the CLI turns into a one-line message and exit 1."""


class DroptraceError(Exception):
    """A problem the user can fix; str() is the message, ideally with the fix."""
