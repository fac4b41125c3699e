"""Errors that mean "the input is wrong", as opposed to a bug: the CLI prints them as one line."""


class InputError(ValueError):
    """Bad user input: the message names the file and the place (record, line, column)."""
