"""Proposal generators (RPN)."""

from __future__ import annotations

from .proposal_utils import add_ground_truth_to_proposals, find_top_rpn_proposals
from .rpn import RPN, RPN_HEAD_REGISTRY, StandardRPNHead

__all__ = [k for k in globals().keys() if not k.startswith("_")]
