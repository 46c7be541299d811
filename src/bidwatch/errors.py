"""The one exception type for bad input: its message is shown to the user as is."""


class InputError(Exception):
    """Input that bidwatch cannot use at all: an unreadable file, a missing required column.

    The message names the file, what is wrong, what was found and how to fix it. Problems
    with single rows are never raised: they become rejected rows.
    """
