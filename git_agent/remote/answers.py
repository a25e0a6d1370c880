"""A worker's answers as the local side takes them: one JSON object a line, parsed once here
and nowhere else. Every string in it (keys and values, however deep) is made printable, so
nothing the worker says reaches your terminal as a control sequence; the fields the protocol
knows are type-checked (a "signal" is an int or null, never text); too deep a nesting is a
malformed answer, not a RecursionError. Also how long a worker may say nothing where it must
answer (docs/remote.md, "Framing"; docs/security.md)."""

from __future__ import annotations

import json
import os

from git_agent.remote.remotes import printable

TIMEOUT_ENV = "GIT_AGENT_REMOTE_TIMEOUT"
SILENCE = 300.0  # seconds a worker may say nothing where it must answer (not while a run goes)
MAX_DEPTH = 32  # nesting of an answer: doctor's checks are 3 deep

_INT, _BOOL, _STR, _LIST, _DICT = (int,), (bool,), (str,), (list,), (dict,)
# the fields of the protocol's answers, and what each may be (None: absent or null)
FIELDS: dict[str, tuple[type, ...]] = {
    "protocol": _INT, "version": _STR, "ok": _BOOL, "error": _STR,
    "bytes": _INT, "have": _LIST, "ticket": _STR, "path": _STR, "detached": _BOOL,
    "running": _BOOL, "known": _BOOL, "lost": _BOOL, "status": _INT, "signal": _INT,
    "tip": _STR, "busy": _STR, "removed": _LIST, "checks": _LIST,
}


class Malformed(ValueError):
    """Not an answer the protocol allows; the message says which part."""


class NotJson(Malformed):
    """Not JSON at all (a banner, a shell's error): the worker gave no answer."""


def silence() -> float:
    """GIT_AGENT_REMOTE_TIMEOUT seconds (a positive number), else SILENCE."""
    raw = os.environ.get(TIMEOUT_ENV, "")
    try:
        value = float(raw)
    except ValueError:
        return SILENCE
    return value if 0 < value < float("inf") else SILENCE


def parse(raw: bytes) -> dict[str, object]:
    """One answer line: a JSON object, its strings printable, its known fields typed."""
    try:
        got = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise Malformed("nested too deep") from None
    except ValueError:
        raise NotJson("not JSON") from None
    if not isinstance(got, dict):
        raise Malformed("not a JSON object")
    clean = _printable(got)
    assert isinstance(clean, dict)
    for key, types in FIELDS.items():
        value = clean.get(key)
        if value is None:
            continue
        if not isinstance(value, types) or (types is _INT and isinstance(value, bool)):
            raise Malformed(f"{key!r} is not {types[0].__name__}")
    return clean


def _no_constant(name: str) -> object:
    raise Malformed(f"{name} is not JSON")


def _printable(obj: object, depth: int = 0) -> object:
    if depth > MAX_DEPTH:
        raise Malformed("nested too deep")
    if isinstance(obj, str):
        return printable(obj)
    if isinstance(obj, list):
        return [_printable(v, depth + 1) for v in obj]
    if isinstance(obj, dict):
        return {printable(k): _printable(v, depth + 1) for k, v in obj.items()}
    return obj
