"""Hardening compatibility fixtures: each check runs as root and as the unprivileged user."""

from helpers import user

__all__ = ["user"]
