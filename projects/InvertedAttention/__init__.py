"""Inverted Attention (Huang, Ke, Huang; WACV 2020) on net_detr2."""
