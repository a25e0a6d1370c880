"""Sessions beyond one machine (docs/remote.md): session bundles in and out (bundle), remotes
and the ssh call to their worker (remotes), the worker's side of the protocol (worker)."""
