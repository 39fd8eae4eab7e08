"""Paper reproductions built on net_detr2, one sub-package per paper."""
