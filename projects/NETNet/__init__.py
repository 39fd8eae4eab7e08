"""NETNet project (importable as projects.NETNet.netnet)."""
