"""Sessions beyond one machine: bundles in and out (bundle), remotes (config), the worker."""
