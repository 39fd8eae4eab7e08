"""NETNet project (importable as net_detr2_projects.NETNet.netnet)."""
