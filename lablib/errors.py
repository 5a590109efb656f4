"""The base of every error a user can cause (a bad file, a wrong parameter, missing data).

Stages catch :class:`LabError` and print its message alone, without a traceback: the message names
the thing that is wrong and what to do about it.
"""


class LabError(Exception):
    """A failure caused by input the user controls, explained in one message."""
