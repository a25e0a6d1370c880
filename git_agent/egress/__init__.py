"""Egress: the allow-list, the filtering proxy outside the sandbox, the forwarder inside."""
