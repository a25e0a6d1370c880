"""Escape-suite fixtures: each attack runs as root and as the unprivileged user."""

from helpers import user

__all__ = ["user"]
