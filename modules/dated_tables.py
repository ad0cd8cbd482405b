"""Tables of facts that go out of date (supported Kubernetes versions, Flux extension releases): each carries the date
it was last checked against its sources, and says so once it is more than six months old, so it cannot rot silently."""

from __future__ import annotations

from datetime import date, timedelta

STALE_AFTER = timedelta(days=183)  # six months: AKS retires a minor, and the extension ships, every few months


def stale_notice(table: str, as_of: date, on: date, update: str) -> str | None:
    """One line for stderr when the table checked on `as_of` is more than six months older than `on`, else None."""
    if on - as_of <= STALE_AFTER:
        return None
    return f"notice: the {table} table is from {as_of.isoformat()}, more than six months old: update {update}"
