"""The one exception type for mistakes a user can make and fix."""


class UserError(Exception):
    """A mistake in a config, a path or a file that the user can fix.

    The message is one readable paragraph that names the thing and the fix; the command-line
    entry points print it without a traceback and exit non-zero.
    """
