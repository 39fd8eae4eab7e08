"""Reading detectron2 YAML configs safely: ``_BASE_`` chains, detectron2's defaults, bounded expressions.

detectron2 (through yacs) evaluates two kinds of code-like values, and so do we, without running code:

* a string value that reads as a Python literal (``MIN_SIZE_TRAIN: (640, 672, 704)`` is a string to YAML)
  becomes that literal: numbers, strings, tuples and lists only, at most ``MAX_LITERAL_CHARS`` characters;
* ``!!python/object/apply:eval ["<expr>"]`` (RetinaNet's anchor sizes) is evaluated by a small interpreter
  over the expression's syntax tree: numbers, lists/tuples, arithmetic and list comprehensions, with a budget
  of steps and elements and a bound on integer sizes, so that no expression can run for long or fill memory.

Every error names the file and the key at fault. Each leaf value remembers the file that set it
(``D2Config.origin``), so errors found after merging still point at the right file.
"""

from __future__ import annotations

import ast
import copy
import math
import os
import re
from typing import Any

import yaml

__all__ = ["D2_DEFAULTS", "D2Config", "load_d2_yaml", "safe_eval_expression", "parse_literal"]

MAX_LITERAL_CHARS = 2000
MAX_EXPRESSION_CHARS = 2000
# Interpreter budget of an eval expression: nodes visited + list elements made, and the largest integer.
_MAX_STEPS = 100_000
_MAX_INT_BITS = 512
_MAX_EXPONENT = 64

# detectron2's defaults (``detectron2/config/defaults.py``) of every key the converter reads. A YAML key
# outside this tree is still read from the file; it is just not filled in when absent.
D2_DEFAULTS: dict[str, Any] = {
    "VERSION": 2,
    "MODEL": {
        "DEVICE": "cuda",
        "WEIGHTS": "",
        "META_ARCHITECTURE": "GeneralizedRCNN",
        "MASK_ON": False,
        "KEYPOINT_ON": False,
        "LOAD_PROPOSALS": False,
        "PIXEL_MEAN": [103.530, 116.280, 123.675],
        "PIXEL_STD": [1.0, 1.0, 1.0],
        "BACKBONE": {"NAME": "build_resnet_backbone", "FREEZE_AT": 2},
        "FPN": {"IN_FEATURES": [], "OUT_CHANNELS": 256, "NORM": "", "FUSE_TYPE": "sum"},
        "PROPOSAL_GENERATOR": {"NAME": "RPN", "MIN_SIZE": 0},
        "ANCHOR_GENERATOR": {
            "NAME": "DefaultAnchorGenerator",
            "SIZES": [[32, 64, 128, 256, 512]],
            "ASPECT_RATIOS": [[0.5, 1.0, 2.0]],
            "ANGLES": [[-90, 0, 90]],
            "OFFSET": 0.0,
        },
        "RPN": {
            "HEAD_NAME": "StandardRPNHead",
            "IN_FEATURES": ["res4"],
            "BOUNDARY_THRESH": -1,
            "IOU_THRESHOLDS": [0.3, 0.7],
            "IOU_LABELS": [0, -1, 1],
            "BATCH_SIZE_PER_IMAGE": 256,
            "POSITIVE_FRACTION": 0.5,
            "BBOX_REG_LOSS_TYPE": "smooth_l1",
            "BBOX_REG_LOSS_WEIGHT": 1.0,
            "BBOX_REG_WEIGHTS": [1.0, 1.0, 1.0, 1.0],
            "SMOOTH_L1_BETA": 0.0,
            "LOSS_WEIGHT": 1.0,
            "PRE_NMS_TOPK_TRAIN": 12000,
            "PRE_NMS_TOPK_TEST": 6000,
            "POST_NMS_TOPK_TRAIN": 2000,
            "POST_NMS_TOPK_TEST": 1000,
            "NMS_THRESH": 0.7,
            "CONV_DIMS": [-1],
        },
        "ROI_HEADS": {
            "NAME": "Res5ROIHeads",
            "NUM_CLASSES": 80,
            "IN_FEATURES": ["res4"],
            "IOU_THRESHOLDS": [0.5],
            "IOU_LABELS": [0, 1],
            "BATCH_SIZE_PER_IMAGE": 512,
            "POSITIVE_FRACTION": 0.25,
            "SCORE_THRESH_TEST": 0.05,
            "NMS_THRESH_TEST": 0.5,
            "PROPOSAL_APPEND_GT": True,
        },
        "ROI_BOX_HEAD": {
            "NAME": "",
            "BBOX_REG_LOSS_TYPE": "smooth_l1",
            "BBOX_REG_LOSS_WEIGHT": 1.0,
            "BBOX_REG_WEIGHTS": [10.0, 10.0, 5.0, 5.0],
            "SMOOTH_L1_BETA": 0.0,
            "POOLER_RESOLUTION": 14,
            "POOLER_SAMPLING_RATIO": 0,
            "POOLER_TYPE": "ROIAlignV2",
            "NUM_FC": 0,
            "FC_DIM": 1024,
            "NUM_CONV": 0,
            "CONV_DIM": 256,
            "NORM": "",
            "CLS_AGNOSTIC_BBOX_REG": False,
            "TRAIN_ON_PRED_BOXES": False,
            "USE_FED_LOSS": False,
            "USE_SIGMOID_CE": False,
        },
        "RETINANET": {
            "NUM_CLASSES": 80,
            "IN_FEATURES": ["p3", "p4", "p5", "p6", "p7"],
            "NUM_CONVS": 4,
            "IOU_THRESHOLDS": [0.4, 0.5],
            "IOU_LABELS": [0, -1, 1],
            "PRIOR_PROB": 0.01,
            "SCORE_THRESH_TEST": 0.05,
            "TOPK_CANDIDATES_TEST": 1000,
            "NMS_THRESH_TEST": 0.5,
            "BBOX_REG_WEIGHTS": [1.0, 1.0, 1.0, 1.0],
            "FOCAL_LOSS_GAMMA": 2.0,
            "FOCAL_LOSS_ALPHA": 0.25,
            "SMOOTH_L1_LOSS_BETA": 0.1,
            "BBOX_REG_LOSS_TYPE": "smooth_l1",
            "NORM": "",
        },
        "RESNETS": {
            "DEPTH": 50,
            "OUT_FEATURES": ["res4"],
            "NUM_GROUPS": 1,
            "NORM": "FrozenBN",
            "WIDTH_PER_GROUP": 64,
            "STRIDE_IN_1X1": True,
            "RES5_DILATION": 1,
            "RES2_OUT_CHANNELS": 256,
            "STEM_OUT_CHANNELS": 64,
            "DEFORM_ON_PER_STAGE": [False, False, False, False],
            "DEFORM_MODULATED": False,
            "DEFORM_NUM_GROUPS": 1,
        },
    },
    "INPUT": {
        "MIN_SIZE_TRAIN": [800],
        "MIN_SIZE_TRAIN_SAMPLING": "choice",
        "MAX_SIZE_TRAIN": 1333,
        "MIN_SIZE_TEST": 800,
        "MAX_SIZE_TEST": 1333,
        "RANDOM_FLIP": "horizontal",
        "CROP": {"ENABLED": False, "TYPE": "relative_range", "SIZE": [0.9, 0.9]},
        "FORMAT": "BGR",
        "MASK_FORMAT": "polygon",
    },
    "DATASETS": {
        "TRAIN": [],
        "PROPOSAL_FILES_TRAIN": [],
        "PRECOMPUTED_PROPOSAL_TOPK_TRAIN": 2000,
        "TEST": [],
        "PROPOSAL_FILES_TEST": [],
        "PRECOMPUTED_PROPOSAL_TOPK_TEST": 1000,
    },
    "DATALOADER": {
        "NUM_WORKERS": 4,
        "ASPECT_RATIO_GROUPING": True,
        "SAMPLER_TRAIN": "TrainingSampler",
        "REPEAT_THRESHOLD": 0.0,
        "REPEAT_SQRT": True,
        "FILTER_EMPTY_ANNOTATIONS": True,
    },
    "SOLVER": {
        "LR_SCHEDULER_NAME": "WarmupMultiStepLR",
        "MAX_ITER": 40000,
        "BASE_LR": 0.001,
        "BASE_LR_END": 0.0,
        "MOMENTUM": 0.9,
        "NESTEROV": False,
        "WEIGHT_DECAY": 0.0001,
        "WEIGHT_DECAY_NORM": 0.0,
        "GAMMA": 0.1,
        "STEPS": [30000],
        "NUM_DECAYS": 3,
        "WARMUP_FACTOR": 1.0 / 1000,
        "WARMUP_ITERS": 1000,
        "WARMUP_METHOD": "linear",
        "RESCALE_INTERVAL": False,
        "CHECKPOINT_PERIOD": 5000,
        "IMS_PER_BATCH": 16,
        "REFERENCE_WORLD_SIZE": 0,
        "BIAS_LR_FACTOR": 1.0,
        "WEIGHT_DECAY_BIAS": None,
        "CLIP_GRADIENTS": {"ENABLED": False, "CLIP_TYPE": "value", "CLIP_VALUE": 1.0, "NORM_TYPE": 2.0},
        "AMP": {"ENABLED": False},
    },
    "TEST": {
        "EXPECTED_RESULTS": [],
        "EVAL_PERIOD": 0,
        "KEYPOINT_OKS_SIGMAS": [],
        "DETECTIONS_PER_IMAGE": 100,
        "AUG": {"ENABLED": False, "MIN_SIZES": [400, 500, 600, 700, 800, 900, 1000, 1100, 1200], "MAX_SIZE": 4000},
        "PRECISE_BN": {"ENABLED": False, "NUM_ITER": 200},
    },
    "OUTPUT_DIR": "./output",
    "SEED": -1,
    "CUDNN_BENCHMARK": False,
    "VIS_PERIOD": 0,
}


# ------------------------------------------------------------------------------------------------
# Bounded evaluation
# ------------------------------------------------------------------------------------------------
class _Budget:
    def __init__(self, where: str, expr: str):
        self.where, self.expr, self.steps = where, expr, 0

    def spend(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > _MAX_STEPS:
            raise ValueError(
                f"{self.where}: expression {self.expr!r} takes more than {_MAX_STEPS} evaluation steps or list "
                "elements; detectron2 configs need far fewer (refused so that no config can hang the converter)"
            )

    def fail(self, why: str) -> ValueError:
        return ValueError(f"{self.where}: expression {self.expr!r}: {why}")


def _check_number(value: Any, budget: _Budget) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > _MAX_INT_BITS:
        raise budget.fail(f"an intermediate integer has more than {_MAX_INT_BITS} bits")
    if isinstance(value, float) and not math.isfinite(value):
        raise budget.fail("an intermediate value is not finite")
    return value


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_BINOPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b,
    ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a**b,
}


def _binop(op: ast.operator, a: Any, b: Any, budget: _Budget) -> Any:
    if not (_is_number(a) and _is_number(b)):
        raise budget.fail(f"arithmetic needs two numbers, got {type(a).__name__} and {type(b).__name__}")
    if isinstance(op, ast.Pow):
        if abs(b) > _MAX_EXPONENT:
            raise budget.fail(f"exponent {b} is larger than {_MAX_EXPONENT}")
        if isinstance(a, int) and isinstance(b, int) and b > 0 and a.bit_length() * b > _MAX_INT_BITS:
            raise budget.fail(f"{a} ** {b} has more than {_MAX_INT_BITS} bits")
    if isinstance(op, ast.Mult) and isinstance(a, int) and isinstance(b, int):
        if a.bit_length() + b.bit_length() > _MAX_INT_BITS + 1:
            raise budget.fail(f"a product has more than {_MAX_INT_BITS} bits")
    try:
        result = _BINOPS[type(op)](a, b)
    except (ZeroDivisionError, OverflowError) as e:
        raise budget.fail(f"{type(e).__name__}: {e}") from e
    if isinstance(result, complex):
        raise budget.fail("the result is a complex number")
    return _check_number(result, budget)


def _interpret(node: ast.AST, env: dict[str, Any], budget: _Budget) -> Any:
    budget.spend()
    if isinstance(node, ast.Expression):
        return _interpret(node.body, env, budget)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in env:
            raise budget.fail(f"name {node.id!r} is not bound here")
        return env[node.id]
    if isinstance(node, (ast.List, ast.Tuple)):
        budget.spend(len(node.elts))
        items = [_interpret(e, env, budget) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.UnaryOp):
        v = _interpret(node.operand, env, budget)
        if not _is_number(v):
            raise budget.fail(f"unary {type(node.op).__name__} on {type(v).__name__}")
        return -v if isinstance(node.op, ast.USub) else +v
    if isinstance(node, ast.BinOp):
        return _binop(node.op, _interpret(node.left, env, budget), _interpret(node.right, env, budget), budget)
    if isinstance(node, ast.ListComp):
        out: list[Any] = []

        def run(gens: list[ast.comprehension], scope: dict[str, Any]) -> None:
            if not gens:
                budget.spend()
                out.append(_interpret(node.elt, scope, budget))
                return
            gen = gens[0]
            iterable = _interpret(gen.iter, scope, budget)
            if not isinstance(iterable, (list, tuple)):
                raise budget.fail(f"a comprehension can only loop over a list or tuple, not {type(iterable).__name__}")
            if not isinstance(gen.target, ast.Name):
                raise budget.fail("a comprehension target must be a single name")
            for item in iterable:
                budget.spend()
                run(gens[1:], {**scope, gen.target.id: item})

        run(list(node.generators), env)
        return out
    raise budget.fail(f"uses {type(node).__name__}")  # unreachable after the static check


# Node types allowed in eval expressions; anything else is refused before evaluation starts.
_EXPR_NODES = (
    ast.Expression,
    ast.List,
    ast.Tuple,
    ast.ListComp,
    ast.comprehension,
    ast.Name,
    ast.Constant,
    ast.BinOp,
    ast.UnaryOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.FloorDiv,
    ast.Pow,
    ast.Mod,
    ast.USub,
    ast.UAdd,
    ast.Load,
    ast.Store,
)


def _parse_expression(expr: str, where: str, what: str, max_chars: int) -> ast.Expression:
    if len(expr) > max_chars:
        raise ValueError(f"{where}: {what} of {len(expr)} characters is longer than {max_chars}: {expr[:60]!r}...")
    try:
        return ast.parse(expr, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise ValueError(f"{where}: cannot parse {what} {expr!r}: {e}") from e


def safe_eval_expression(expr: str, where: str) -> Any:
    """Evaluate a ``!!python/object/apply:eval`` expression of a detectron2 yaml without running code.

    Numbers, lists/tuples, ``+ - * / // % **`` on numbers and list comprehensions over lists; exponents
    are constant arithmetic (no ``**`` or names inside them) no larger than 64 in magnitude; at most
    100000 steps and list elements; integers of at most 512 bits. ``where`` (file and key) prefixes every error.
    """
    if not isinstance(expr, str):
        raise ValueError(f"{where}: !!python/object/apply:eval takes one string, got {expr!r}")
    tree = _parse_expression(expr, where, "!!python/object/apply:eval expression", MAX_EXPRESSION_CHARS)
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    for n in ast.walk(tree):
        if not isinstance(n, _EXPR_NODES) or (isinstance(n, ast.Constant) and not _is_number(n.value)):
            raise ValueError(
                f"{where}: !!python/object/apply:eval expression {expr!r} uses {type(n).__name__}; "
                "only numbers, lists, arithmetic and list comprehensions are allowed"
            )
        if isinstance(n, ast.Name) and n.id not in bound:
            raise ValueError(f"{where}: !!python/object/apply:eval expression {expr!r} uses unknown name {n.id!r}")
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Pow):
            if any(
                isinstance(m, ast.Name) or (isinstance(m, ast.BinOp) and isinstance(m.op, ast.Pow))
                for m in ast.walk(n.right)
            ):
                raise ValueError(
                    f"{where}: !!python/object/apply:eval expression {expr!r}: an exponent must be constant arithmetic"
                )
    return _interpret(tree, {}, _Budget(where, expr))


def _literal(node: ast.AST, text: str, where: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
        return node.value
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [_literal(e, text, where) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _literal(node.operand, text, where)
        if _is_number(v):
            return -v if isinstance(node.op, ast.USub) else v
    raise ValueError(f"{where}: {text!r} is not a literal (numbers, strings, tuples and lists only)")


def parse_literal(text: str, where: str) -> Any:
    """A string value that detectron2 would evaluate as a Python literal (``"(640, 672)"`` -> ``(640, 672)``).

    Text that is no literal at all (``"BGR"``, ``"./output"``) comes back unchanged, as in detectron2. Text that
    starts like a tuple or list but is malformed, too long (> 2000 characters) or holds anything but numbers,
    strings, tuples and lists raises ``ValueError`` naming ``where``.
    """
    stripped = text.strip()
    looks_like_sequence = stripped[:1] in ("(", "[")
    if len(stripped) > MAX_LITERAL_CHARS:
        if looks_like_sequence:
            raise ValueError(
                f"{where}: value of {len(stripped)} characters is longer than {MAX_LITERAL_CHARS}: {stripped[:60]!r}..."
            )
        return text
    try:
        tree = ast.parse(stripped, mode="eval")
        return _literal(tree.body, stripped, where)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        if looks_like_sequence:
            msg = str(e) if isinstance(e, ValueError) and str(e).startswith(where) else f"cannot parse {text!r}: {e}"
            raise ValueError(msg if msg.startswith(where) else f"{where}: {msg}") from e
        return text


# ------------------------------------------------------------------------------------------------
# Files, _BASE_ chains and merging
# ------------------------------------------------------------------------------------------------
def _make_loader(source: str):
    class _D2Loader(yaml.SafeLoader):
        pass

    def construct_eval(loader, node):
        args = loader.construct_sequence(node)
        if len(args) != 1 or not isinstance(args[0], str):
            raise ValueError(f"{source}: !!python/object/apply:eval takes one string, got {args!r}")
        return _Expression(args[0])

    _D2Loader.add_constructor("tag:yaml.org,2002:python/object/apply:eval", construct_eval)
    return _D2Loader


class _Expression(str):
    """An eval expression, evaluated once its key (for error messages) is known."""


def _evaluate_strings(node: Any, source: str, key: str) -> Any:
    """Literal strings -> values and eval expressions -> values, in a parsed yaml tree."""
    where = f"{source}: {key}" if key else source
    if isinstance(node, _Expression):
        return safe_eval_expression(str(node), where)
    if isinstance(node, dict):
        return {k: _evaluate_strings(v, source, f"{key}.{k}" if key else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_evaluate_strings(v, source, key) for v in node]
    if isinstance(node, str) and key != "_BASE_":
        return parse_literal(node, where)
    return node


def _parse(text: str, source: str) -> dict:
    try:
        data = yaml.load(text, Loader=_make_loader(source))  # a SafeLoader plus the bounded eval above
    except yaml.YAMLError as e:
        raise ValueError(f"{source}: invalid YAML: {e}") from e
    except RecursionError as e:
        raise ValueError(f"{source}: YAML nested too deeply") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{source}: a detectron2 config must be a YAML mapping, got {type(data).__name__}")
    return _evaluate_strings(data, source, "")


def _merge(base: dict, override: dict, where: str, origins: dict[str, str] | None = None, source: str = "") -> dict:
    """Deep-merge `override` into a copy of `base` (dicts merge, everything else replaces).

    ``origins`` (dotted key -> file), when given, records ``source`` for every leaf that `override` sets.
    """
    out = copy.deepcopy(base)
    for k, v in override.items():
        key = f"{where}.{k}" if where else str(k)
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v, key, origins, source)
        elif isinstance(out.get(k), dict) and v is not None:
            raise ValueError(
                f"{source + ': ' if source else ''}detectron2 config key {key} must be a mapping, got {v!r}"
            )
        else:
            out[k] = v
            if origins is not None:
                for leaf in _leaf_keys(v, key):
                    origins[leaf] = source
    return out


def _leaf_keys(value: Any, key: str) -> list[str]:
    if isinstance(value, dict) and value:
        return [leaf for k, v in value.items() for leaf in _leaf_keys(v, f"{key}.{k}")]
    return [key]


def _load_with_bases(
    text: str, base_dir: str | None, source: str, seen: tuple[str, ...], origins: dict[str, str]
) -> dict:
    data = _parse(text, source)
    base = data.pop("_BASE_", None)
    if base is None:
        return _merge({}, data, "", origins, source)
    if not isinstance(base, str):
        raise ValueError(f"{source}: _BASE_ must be a file name, got {base!r}")
    if base_dir is None:
        raise ValueError(f"{source}: has _BASE_: {base!r}; pass base_dir (the folder of the yaml) to resolve it")
    base_path = os.path.normpath(os.path.join(base_dir, os.path.expanduser(base)))
    if base_path in seen:
        raise ValueError(f"{source}: _BASE_ cycle through {base_path}")
    if not os.path.isfile(base_path):
        raise FileNotFoundError(f"{source}: _BASE_ file {base_path} not found")
    with open(base_path, encoding="utf-8") as f:
        parent = _load_with_bases(f.read(), os.path.dirname(base_path), base_path, seen + (base_path,), origins)
    return _merge(parent, data, "", origins, source)


class D2Config:
    """A merged detectron2 config: the values the files set (``explicit``), detectron2's defaults beneath
    them (``data``), the file that set each key (``origin``) and the keys read so far (``used``)."""

    def __init__(self, explicit: dict, origin: dict[str, str], source: str):
        self.explicit = explicit
        self.data = _merge(D2_DEFAULTS, explicit, "")
        self.origin = origin
        self.source = source
        self.used: set[str] = set()

    def where(self, key: str) -> str:
        """The file that set ``key`` (or the top file, for defaults), for messages."""
        return self.origin.get(key, self.source)

    def is_set(self, key: str) -> bool:
        """Whether a file sets ``key`` (as opposed to detectron2's default)."""
        return key in self.origin or any(k.startswith(key + ".") for k in self.origin)

    def __call__(self, key: str) -> Any:
        node = self.data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(f"{self.source}: detectron2 config has no key {key}")
            node = node[part]
        self.used.add(key)
        return node

    def peek(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` (``default`` when absent) without counting it as read."""
        node = self.data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def mark_used(self, *keys: str) -> None:
        self.used.update(keys)

    def _bad(self, key: str, value: Any, expected: str) -> ValueError:
        return ValueError(f"{self.where(key)}: {key} = {value!r} is not {expected}")

    def int(self, key: str) -> int:
        v = self(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not v.is_integer()):
            raise self._bad(key, v, "an integer")
        return int(v)

    def float(self, key: str) -> float:
        v = self(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise self._bad(key, v, "a finite number")
        return float(v)

    def bool(self, key: str) -> bool:
        v = self(key)
        if not isinstance(v, bool):
            raise self._bad(key, v, "true or false")
        return v

    def str(self, key: str) -> str:
        v = self(key)
        if not isinstance(v, str):
            raise self._bad(key, v, "a string")
        return v

    def list(self, key: str, item: type | tuple[type, ...] | None = None, allow_scalar: bool = False) -> list:
        v = self(key)
        if allow_scalar and not isinstance(v, (list, tuple)):
            v = [v]
        if not isinstance(v, (list, tuple)):
            raise self._bad(key, v, "a list")
        if item is not None:
            for x in v:
                if not isinstance(x, item) or isinstance(x, bool) and item is not bool:
                    names = item.__name__ if isinstance(item, type) else "/".join(t.__name__ for t in item)
                    raise self._bad(key, v, f"a list of {names}")
        return list(v)

    def require(self, key: str, allowed, why: str = "") -> Any:
        value = self(key)
        if value not in allowed:
            raise ValueError(
                f"{self.where(key)}: {key} = {value!r} is not supported by net_detr2's converter "
                f"(supported: {list(allowed)}){' ' + why if why else ''}"
            )
        return value

    def unused_keys(self) -> list[str]:
        """Keys the files set that no conversion step read, in file order."""
        return [k for k in self.origin if k not in self.used and not any(k.startswith(u + ".") for u in self.used)]


def load_d2_config(
    yaml_text: str, base_dir: str | None = None, source: str = "<yaml>", overrides: list[str] | None = None
) -> D2Config:
    """Parse a detectron2 yaml, resolve its ``_BASE_`` chain (relative to `base_dir`) and apply ``overrides``
    (detectron2's command-line form: ``["SOLVER.IMS_PER_BATCH", "2", "INPUT.MIN_SIZE_TRAIN", "(320,)"]``)."""
    origins: dict[str, str] = {}
    explicit = _load_with_bases(yaml_text, base_dir, source, (), origins)
    overrides = list(overrides or [])
    if len(overrides) % 2:
        raise ValueError(f"overrides must be KEY VALUE pairs, got an odd number of words: {overrides}")
    for key, text in zip(overrides[::2], overrides[1::2]):
        if not re.fullmatch(r"[A-Z0-9_]+(\.[A-Z0-9_]+)*", key):
            raise ValueError(f"override {key!r}: detectron2 keys are upper-case dotted names like SOLVER.BASE_LR")
        parts = key.split(".")
        value: Any = yaml.safe_load(text) if text.strip() else text
        if isinstance(value, str):
            value = parse_literal(value, f"command line: {key}")
        nested: Any = value
        for p in reversed(parts):
            nested = {p: nested}
        explicit = _merge(explicit, nested, "", origins, "command line")
    return D2Config(explicit, origins, source)


def load_d2_yaml(yaml_text: str, base_dir: str | None = None, source: str = "<yaml>") -> dict:
    """Parse a detectron2 yaml, resolve ``_BASE_`` chains (relative to `base_dir`), fill defaults.

    Returns a plain nested dict (``{"MODEL": {...}, "INPUT": {...}, ...}``).
    """
    return load_d2_config(yaml_text, base_dir, source).data
