"""Sessions: names (names), the store (store), the lock (lock), meta.json (meta), the
repository's identity (identity)."""

from git_agent.session.lock import Lock, busy_message
from git_agent.session.meta import Meta, RunRecord
from git_agent.session.names import (
    BASE_PREFIX,
    BRANCH_PREFIX,
    DETACHED_NAME,
    check_name,
    default_name,
    refname_ok,
)
from git_agent.session.store import (
    Session,
    create,
    elsewhere_message,
    get,
    list_sessions,
    owner_elsewhere,
    remove,
    session_dir,
    state_root,
    upper_of,
    worktree_store,
)

__all__ = [
    "BASE_PREFIX", "BRANCH_PREFIX", "DETACHED_NAME", "Lock", "Meta", "RunRecord", "Session",
    "busy_message", "check_name", "create", "default_name", "elsewhere_message", "get",
    "list_sessions", "owner_elsewhere", "refname_ok", "remove", "session_dir", "state_root",
    "upper_of", "worktree_store",
]
