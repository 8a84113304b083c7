"""Operator alerts: a failed, stopped or late nightly, sent through apprise.

Targets are the ``ABS_PIPELINE_ALERT_URLS`` setting (any apprise URL: ``json://`` to a
webhook, ``mailto://``, ``file:///path``; a ``file://`` target appends one JSON line
per alert, which is what tests and a log shipper read). Every alert is also appended
to ``state/alerts.jsonl`` so that ``status`` can show the last one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlparse

from flows.catalog import Catalog

AlertKind = Literal["failed", "missing_delivery", "late"]
logger = logging.getLogger(__name__)


def send_alert(
    catalog: Catalog,
    urls: Sequence[str],
    *,
    kind: AlertKind,
    title: str,
    body: str,
    now: datetime | None = None,
) -> bool:
    """Send an alert to every target; return whether all targets took it.

    A failure to alert is logged, never raised: it must not hide the run's own error.
    """
    record = {
        "at": (now or datetime.now(UTC)).isoformat(),
        "kind": kind,
        "title": title,
        "body": body,
    }
    line = json.dumps(record, ensure_ascii=False, sort_keys=True)
    delivered = True
    # Imported here: apprise loads its notification plugins (a third of a second); every
    # flow run imports this module (flows.status reads the alert log), only a failed or
    # late run sends an alert.
    import apprise  # noqa: PLC0415

    notifier = apprise.Apprise()
    for url in urls:
        if url.startswith("file://"):
            delivered &= _append(Path(unquote(urlparse(url).path)), line)
        elif not notifier.add(url):
            logger.error("alert target not understood by apprise: %s", url.split("://")[0])
            delivered = False
    if len(notifier) and not notifier.notify(title=title, body=body):
        logger.error("alert %r was not delivered to every target", title)
        delivered = False
    _append(catalog.alert_log, line)
    return delivered


def _append(path: Path, line: str) -> bool:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
    except OSError as exc:
        logger.error("alert not written to %s: %s", path, exc)
        return False
    return True


def last_alert(catalog: Catalog) -> dict[str, str] | None:
    """The last alert recorded under the data root."""
    path = catalog.alert_log
    if not path.is_file():
        return None
    lines = path.read_text(encoding="utf-8").splitlines()
    return json.loads(lines[-1]) if lines else None
