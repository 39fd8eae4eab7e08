"""EFPN: Extended Feature Pyramid Network for small object detection (Deng et al.)."""
