"""Record: the base of the small value classes that `git agent run` needs before bwrap starts.

Not dataclasses: importing it (it brings inspect, ast, dis and tokenize) and creating some
twenty classes with it cost ~10 ms, a sixth of the launch budget (docs/performance.md). A
record names its fields in `__slots__`, in order, and sets each in `__init__`; equality,
hashing and repr follow from them. Fields are not reassigned after `__init__` (not enforced).
"""

from __future__ import annotations


class Record:
    __slots__: tuple[str, ...] = ()

    def _fields(self) -> tuple[str, ...]:
        """The slots of the record's class and of the records it derives from, base first."""
        return tuple(name for c in reversed(type(self).__mro__)
                     for name in c.__dict__.get("__slots__", ()))

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self._fields())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record) or type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:  # a record holding a list or dict is not hashable
        return hash((type(self).__name__, self._values()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields())
        return f"{type(self).__name__}({fields})"
