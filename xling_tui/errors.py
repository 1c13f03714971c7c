"""Which errors a user can act on (shown as their message) and which are xling's bugs."""

from __future__ import annotations


def is_user_error(error: BaseException) -> bool:
    """Bad config, busy or missing database, refused action, unreadable file: the message says it all."""
    from db.store import StoreError
    from engine.config.locate import SpecError
    from xling_tui.actions import ActionError

    return isinstance(error, (StoreError, SpecError, ActionError, LookupError, PermissionError, FileNotFoundError))
