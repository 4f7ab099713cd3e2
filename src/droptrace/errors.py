"""The exceptions the CLI turns into a one-line message (exit 1, or 2 for usage)."""


class DroptraceError(Exception):
    """A problem the user can fix; str() is the message, ideally with the fix."""

    exit_code = 1


class UsageError(DroptraceError):
    """The command line itself is wrong (e.g. a filter expression that does not compile)."""

    exit_code = 2
