"""The capture: base snapshot, the overlay upper read as changes, the agent's git, the commit."""
