"""Which errors a user can act on (shown as their message) and which are xling's bugs."""

from __future__ import annotations


def is_user_error(error: BaseException) -> bool:
    """Every error whose message is for the user derives from ``XlingError`` (bad config,
    busy database, refused action, a backend's refusal, unreadable data); anything else is
    a bug in xling and keeps its traceback."""
    from engine.errors import XlingError

    return isinstance(error, XlingError)
