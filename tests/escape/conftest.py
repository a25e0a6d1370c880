"""Escape-suite fixtures: each attack runs as root and as the unprivileged user."""

from helpers import tun_open_to_users, user

__all__ = ["tun_open_to_users", "user"]
