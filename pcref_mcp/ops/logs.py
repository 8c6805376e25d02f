"""``PCREF_LOG_FORMAT=json``: every log line on stderr as one JSON object a log pipeline can take.

Fields: ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``msg`` (the formatted message), the
``request_id`` of the HTTP request it belongs to (:mod:`pcref_mcp.calls`) and the ``person`` (the
principal's object id, never a name or an address) where there is one, plus the structured fields a
line carries (``event``: ``request``, ``call`` or ``write``, and theirs: ``route``, ``status``,
``ms``, ``tool``, ``outcome``, ``change_id``). Only fields from that list are copied, so a stray
``extra`` can never put a token or an e-mail address into the logs. A traceback goes in ``exc``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from pcref_mcp import calls, identity

__all__ = ["FIELDS", "JsonFormatter"]

# the structured fields a record may carry into its JSON line (stable names: documented)
FIELDS = ("event", "method", "route", "status", "ms", "tool", "outcome", "change_id")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or calls.request_id()
        if request_id:
            line["request_id"] = request_id
        person = identity.current()
        if not person.is_local:
            line["person"] = person.id
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)
