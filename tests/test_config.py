"""LazyConfig: relative-import loading, typed overrides, save/load round trip, key errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig

from net_detr2.config import ConfigKeyError, InstantiationError, LazyConfig, instantiate
from net_detr2.config import LazyCall as L

REPO = Path(__file__).resolve().parents[1]


class Head:
    """A stand-in ROI head with keyword arguments like the real one."""

    def __init__(self, num_classes: int, box_in_features=("p2",), batch_size_per_image: int = 512):
        self.num_classes = num_classes
        self.box_in_features = box_in_features
        self.batch_size_per_image = batch_size_per_image


class Model:
    def __init__(self, roi_heads, pixel_mean=(0.0, 0.0, 0.0)):
        self.roi_heads = roi_heads
        self.pixel_mean = pixel_mean


def takes_kwargs(a, **kwargs):
    return a, kwargs


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def config_tree(tmp_path):
    _write(
        tmp_path / "common" / "optim.py",
        (
            "import torch\n"
            "from net_detr2.config import LazyCall as L\n"
            "SGD = L(torch.optim.SGD)(params=None, lr=0.02, momentum=0.9)\n"
        ),
    )
    _write(
        tmp_path / "common" / "models" / "head.py",
        (
            "from net_detr2.config import LazyCall as L\n"
            f"model = L('{__name__}.Model')(roi_heads=L('{__name__}.Head')(num_classes=80))\n"
        ),
    )
    _write(
        tmp_path / "common" / "train.py", "train = dict(max_iter=100, output_dir='./out', amp=dict(enabled=False))\n"
    )
    exp = _write(
        tmp_path / "projects" / "exp" / "cfg.py",
        (
            "from ...common.optim import SGD as optimizer\n"
            "from ...common.models.head import model\n"
            "from ...common import train as _train_module\n"
            "train = _train_module.train\n"
            "train['max_iter'] = 10\n"
            "model.roi_heads.num_classes = 5\n"
            "optimizer.lr = 0.01\n"
            "_hidden = dict(a=1)\n"
            "not_config = 3\n"
        ),
    )
    return tmp_path, exp


def test_load_relative_imports(config_tree):
    _, exp = config_tree
    cfg = LazyConfig.load(str(exp))
    assert sorted(cfg.keys()) == ["model", "optimizer", "train"]  # _hidden and ints are not config
    assert cfg.optimizer._target_ is torch.optim.SGD
    assert cfg.optimizer.lr == 0.01 and cfg.optimizer.momentum == 0.9
    assert cfg.model.roi_heads.num_classes == 5
    assert cfg.train.max_iter == 10 and cfg.train.output_dir == "./out"
    # Each load executes the files afresh: mutating one result does not leak into another.
    cfg.model.roi_heads.num_classes = 7
    assert LazyConfig.load(str(exp), "model").roi_heads.num_classes == 5
    opt, train = LazyConfig.load(str(exp), ["optimizer", "train"])
    assert opt.lr == 0.01 and train.max_iter == 10


def test_load_missing_relative_file_names_it(tmp_path):
    exp = _write(tmp_path / "a" / "cfg.py", "from ..nothere import x\n")
    with pytest.raises(ImportError, match=r"nothere\.py does not exist"):
        LazyConfig.load(str(exp))


def test_load_repo_common_configs():
    optimizer = LazyConfig.load(str(REPO / "configs/common/optim.py"), "SGD")
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    optimizer.params.model = model
    opt = instantiate(optimizer)
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["lr"] == 0.02
    # BatchNorm parameters land in a group without weight decay.
    wds = sorted(g.get("weight_decay", opt.defaults["weight_decay"]) for g in opt.param_groups)
    assert wds == [0.0, 1e-4]
    adamw = LazyConfig.load(str(REPO / "configs/common/optim.py"), "AdamW")
    adamw.params.model = model
    opt = instantiate(adamw)
    assert all(g["lr"] == 1e-4 for g in opt.param_groups)  # ${..lr} interpolation resolved
    train = LazyConfig.load(str(REPO / "configs/common/train.py"), "train")
    assert train.max_iter == 90000 and train.checkpointer.period == 5000


def test_overrides_are_typed(config_tree):
    _, exp = config_tree
    cfg = LazyConfig.load(str(exp))
    LazyConfig.apply_overrides(
        cfg,
        [
            "train.max_iter=20",
            "optimizer.lr=0.5",
            "train.output_dir=/tmp/x",
            "train.amp.enabled=True",
            "model.pixel_mean=[1, 2, 3]",
            "model.roi_heads.box_in_features=('p3','p4')",
            "model.roi_heads.batch_size_per_image=None",  # not set in the node, but an argument of Head
        ],
    )
    assert cfg.train.max_iter == 20 and isinstance(cfg.train.max_iter, int)
    assert cfg.optimizer.lr == 0.5 and isinstance(cfg.optimizer.lr, float)
    assert cfg.train.output_dir == "/tmp/x"
    assert cfg.train.amp.enabled is True
    assert list(cfg.model.pixel_mean) == [1, 2, 3]
    assert list(cfg.model.roi_heads.box_in_features) == ["p3", "p4"]
    assert cfg.model.roi_heads.batch_size_per_image is None
    LazyConfig.apply_overrides(cfg, ["+train.new_key=3"])  # '+' adds a key
    assert cfg.train.new_key == 3
    LazyConfig.apply_overrides(cfg, ["train.amp.enabled=false", "train.output_dir=null", "optimizer.lr=1e-3"])
    assert cfg.train.amp.enabled is False and cfg.train.output_dir is None and cfg.optimizer.lr == 0.001


def test_override_unknown_key_names_nearest(config_tree):
    _, exp = config_tree
    cfg = LazyConfig.load(str(exp))
    with pytest.raises(ConfigKeyError) as e:
        LazyConfig.apply_overrides(cfg, ["model.roi_heads.num_clases=5"])
    assert str(e.value) == (
        "Override 'model.roi_heads.num_clases=5': key 'model.roi_heads.num_clases' does not "
        "exist; did you mean 'model.roi_heads.num_classes'?"
    )
    with pytest.raises(ConfigKeyError, match=r"key 'trian' does not exist; did you mean 'train'\?"):
        LazyConfig.apply_overrides(cfg, ["trian.max_iter=5"])
    with pytest.raises(ValueError, match="not of the form key=value"):
        LazyConfig.apply_overrides(cfg, ["train.max_iter"])


def test_save_load_roundtrip(config_tree, tmp_path):
    _, exp = config_tree
    cfg = LazyConfig.load(str(exp))
    LazyConfig.apply_overrides(cfg, ["train.max_iter=33"])
    out = tmp_path / "saved" / "config.yaml"
    LazyConfig.save(cfg, str(out))
    loaded = LazyConfig.load(str(out))
    assert loaded.optimizer._target_ == "torch.optim.SGD"  # callables saved as dotted names
    assert loaded == DictConfig(LazyConfig.to_plain(cfg))
    # Saving the loaded config again gives the same file, and it instantiates the same objects.
    out2 = tmp_path / "saved" / "config2.yaml"
    LazyConfig.save(loaded, str(out2))
    assert out.read_text() == out2.read_text()
    m1, m2 = instantiate(cfg.model), instantiate(loaded.model)
    assert type(m1) is type(m2) is Model and m1.roi_heads.num_classes == m2.roi_heads.num_classes == 5


def test_to_py_is_executable(config_tree):
    _, exp = config_tree
    cfg = LazyConfig.load(str(exp))
    src = LazyConfig.to_py(cfg)
    assert "L(torch.optim.SGD)(" in src
    ns: dict = {}
    exec(src, ns)
    assert ns["cfg"].model.roi_heads.num_classes == 5
    assert instantiate(ns["cfg"].model).roi_heads.num_classes == 5


def test_instantiate_recursive_and_passthrough():
    sentinel = object()
    cfg = L(Model)(
        roi_heads=L(Head)(num_classes=3),
        pixel_mean=[L(takes_kwargs)(a=1, x=2), {"y": L(Head)(num_classes=2)}, sentinel],
    )
    m = instantiate(cfg)
    assert isinstance(m.roi_heads, Head) and m.roi_heads.num_classes == 3
    assert m.pixel_mean[0] == (1, {"x": 2})
    assert isinstance(m.pixel_mean[1]["y"], Head)
    assert m.pixel_mean[2] is sentinel  # non-config objects pass through untouched
    assert instantiate({"_target_": f"{__name__}.Head", "num_classes": 4}).num_classes == 4
    assert instantiate(L(takes_kwargs)(a=1, anything=2)) == (1, {"anything": 2})  # **kwargs: no check
    assert instantiate(5) == 5


def test_instantiate_unknown_argument_message():
    cfg = DictConfig({"model": L(Model)(roi_heads=L(Head)(num_clases=5))}, flags={"allow_objects": True})
    with pytest.raises(InstantiationError) as e:
        instantiate(cfg.model)
    assert str(e.value).startswith(
        "model.roi_heads: unknown argument 'num_clases' for Head; did you mean 'num_classes'?"
    )
    assert isinstance(e.value, TypeError)
    with pytest.raises(InstantiationError, match=r"model.roi_heads: missing required argument\(s\) 'num_classes'"):
        instantiate(DictConfig({"model": L(Model)(roi_heads=L(Head)())}, flags={"allow_objects": True}).model)
    with pytest.raises(ImportError, match=r"model._target_: Cannot locate 'no_such_pkg.Thing'"):
        instantiate(DictConfig({"model": {"_target_": "no_such_pkg.Thing"}}).model)


def test_saved_config_keeps_classes_given_as_arguments(tmp_path):
    """``block_class=BasicBlock`` (a class as a value, not a ``_target_``) loads back as the class itself."""
    from net_detr2.modeling import BasicBlock, ResNet

    cfg = DictConfig(
        {"stage": L(ResNet.make_stage)(block_class=BasicBlock, num_blocks=1, in_channels=4, out_channels=4, norm="")},
        flags={"allow_objects": True},
    )
    LazyConfig.save(cfg, str(tmp_path / "config.yaml"))
    text = (tmp_path / "config.yaml").read_text()
    assert "name: net_detr2.modeling.BasicBlock" in text
    loaded = LazyConfig.load(str(tmp_path / "config.yaml"))
    blocks = instantiate(loaded.stage)
    assert len(blocks) == 1 and type(blocks[0]) is BasicBlock
    assert "block_class=net_detr2.modeling.BasicBlock," in LazyConfig.to_py(loaded)


# ------------------------------------------------------------------------------------------------
# Repeated values are set once (OmegaConf interpolation) and shared pieces have a name
# ------------------------------------------------------------------------------------------------
def test_overriding_a_repeated_value_reaches_every_node_that_repeats_it(tmp_path):
    cfg = LazyConfig.load(str(REPO / "configs/shapes/retinanet_R18_FPN.py"))
    LazyConfig.apply_overrides(cfg, ["model.num_classes=5", "model.backbone.out_channels=64"])
    assert cfg.model.head.num_classes == 5 and cfg.model.head.input_shape[4].channels == 64
    # the interpolations survive a save and a load: a later change still propagates
    LazyConfig.save(cfg, str(tmp_path / "retinanet.yaml"))
    back = LazyConfig.load(str(tmp_path / "retinanet.yaml"))
    assert back.model.head.num_classes == 5
    back.model.num_classes = 3
    model = instantiate(back.model)
    assert model.num_classes == 3 and model.head.cls_score.out_channels == 2 * 3  # 2 anchors per location
    assert model.head.cls_subnet[0].in_channels == 64

    cfg = LazyConfig.load(str(REPO / "configs/shapes/faster_rcnn_R18_FPN.py"))
    overrides = [
        "model.roi_heads.num_classes=4",
        "model.backbone.out_channels=64",
        "model.roi_heads.box_pooler.output_size=5",
    ]
    LazyConfig.apply_overrides(cfg, overrides)
    model = instantiate(cfg.model)
    assert model.roi_heads.box_predictor.cls_score.out_features == 4 + 1
    assert model.proposal_generator.rpn_head.conv.in_channels == 64
    assert model.roi_heads.box_head.fc1.in_features == 64 * 5 * 5

    cfg = LazyConfig.load(str(REPO / "projects/NETNet/configs/ssd300_shapes.py"))
    cfg.model.num_classes = 9
    assert cfg.model.head.num_classes == 9


def test_config_files_import_the_shared_configs_by_name(tmp_path):
    from net_detr2.model_zoo import get_config, get_config_file

    own = tmp_path / "deep" / "er" / "mine.py"
    own.parent.mkdir(parents=True)
    own.write_text(
        "from net_detr2.model_zoo.configs.common.data.loader import ssd_augmentations\n"
        "from net_detr2.model_zoo.configs.common.data.voc_ssd import dataloader\n"
        "dataloader.train.mapper.augmentations = ssd_augmentations(512, train=True)\n"
    )
    cfg = LazyConfig.load(str(own))
    assert cfg.dataloader.train.dataset.names == ["voc_2007_trainval", "voc_2012_trainval"]
    assert cfg.dataloader.train.mapper.augmentations[3].shape == [512, 512]
    assert get_config("common/data/voc_ssd.py").dataloader.test.dataset.names == "voc_2007_test"
    assert get_config_file("common/optim.py") == str(REPO / "configs" / "common" / "optim.py")
    with pytest.raises(FileNotFoundError, match="no config 'common/nope.py'"):
        get_config_file("common/nope.py")
    own.write_text("from net_detr2.model_zoo.configs.common.data.nope import dataloader\n")
    with pytest.raises(ImportError, match="does not name a config file"):
        LazyConfig.load(str(own))


def test_configs_use_names_not_dots_or_list_indices():
    """Shared pieces are imported by name (no chains of relative dots up to the repository) and lists are
    replaced by name (``ssd_augmentations(512, ...)``), never edited by index (``augmentations[3]``)."""
    import re

    offenders = []
    for path in sorted([*REPO.glob("configs/**/*.py"), *REPO.glob("projects/*/configs/**/*.py")]):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.match(r"\s*from \.{3,}", line) or re.search(r"\]\s*\.\s*\w+\s*=[^=]", line):
                offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert offenders == []
