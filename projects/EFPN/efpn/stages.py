"""Parameter-name patterns of the three-stage schedule, for ``train.trainable_params``.

They are regular expressions matched at the start of each parameter name (``re.match``, as
`net_detr2.solver.freeze_parameters` applies them); everything not matched is frozen.
"""

from __future__ import annotations

__all__ = ["STAGE2_TRAINABLE_PARAMS", "STAGE3_TRAINABLE_PARAMS"]

# Stage 2: only the extension (C2' lateral, FTT / SR module, P2' output conv), trained by distillation.
STAGE2_TRAINABLE_PARAMS = [r"backbone\.(c2_prime_lateral|ftt|p2_prime_output)\."]

# Stage 3: only the P2' box head and its predictor, trained with OHEM.
STAGE3_TRAINABLE_PARAMS = [r"roi_heads\.p2_box_(head|predictor)\."]
