"""Settings: git config `agent.*` keys, presets, and their resolution into sandbox options."""
