"""The Aquarium photo set end to end: every Aquarium config builds and takes a training step on real photos
through its own mapper; one recipe trains a few iterations and is evaluated on a slice of aquarium_valid."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from net_detr2.config import LazyConfig, instantiate
from net_detr2.data import DatasetCatalog, MetadataCatalog
from net_detr2.utils.env import seed_all_rng

REPO = Path(__file__).resolve().parents[1]
CPU_RECIPES = [
    "configs/aquarium/faster_rcnn_R18_FPN.py",
    "configs/aquarium/retinanet_R18_FPN.py",
    "configs/aquarium/faster_rcnn_R18_FPN_imagenet.py",
    "projects/NETNet/configs/ssd300_aquarium.py",
    "projects/NETNet/configs/netnet300_aquarium.py",
    "projects/EFPN/configs/aquarium_stage1_fpn.py",
    "projects/EFPN/configs/aquarium_stage2_distill.py",
    "projects/EFPN/configs/aquarium_stage3_p2head.py",
    "projects/EFPN/configs/aquarium_control_head_ft.py",
    "projects/InvertedAttention/configs/aquarium/ia_faster_rcnn_R18_FPN_aquarium.py",
    "projects/DCRetinaNet/configs/aquarium/dc_retinanet_R18_FPN_aquarium.py",
]
GPU_RECIPES = {
    "configs/aquarium/faster_rcnn_R18_FPN_gpu.py": "configs/aquarium/faster_rcnn_R18_FPN.py",
    "projects/NETNet/configs/netnet300_aquarium_gpu.py": "projects/NETNet/configs/netnet300_aquarium.py",
}


def test_every_aquarium_config_is_listed_here():
    found = {
        str(p.relative_to(REPO))
        for p in REPO.glob("**/configs/**/*aquarium*.py")
        if ".venv" not in p.parts and "common" not in p.parts
    }
    found |= {str(p.relative_to(REPO)) for p in (REPO / "configs" / "aquarium").glob("*.py")}
    assert found == set(CPU_RECIPES) | set(GPU_RECIPES)


@pytest.mark.parametrize("config", CPU_RECIPES)
def test_aquarium_config_trains_a_step_on_photos(config, aquarium_root):
    cfg = LazyConfig.load(str(REPO / config))
    assert cfg.dataloader.train.dataset.names == "aquarium_train"
    assert cfg.dataloader.test.dataset.names == "aquarium_valid"
    assert cfg.train.device == "cpu"
    seed_all_rng(0)  # the augmentations (random crops) draw from numpy
    model = instantiate(cfg.model).train()
    assert model.num_classes == 7 if hasattr(model, "num_classes") else model.roi_heads.num_classes == 7
    mapper = instantiate(cfg.dataloader.train.mapper)
    dicts = DatasetCatalog.get("aquarium_train")
    batch = [mapper(dicts[i]) for i in (0, 1)]
    assert all(len(b["instances"]) > 0 for b in batch)
    losses = model(batch)
    assert losses and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    trained = [
        n for n, p in model.named_parameters() if p.requires_grad and p.grad is not None and p.grad.abs().sum() > 0
    ]
    assert trained, "no parameter received a gradient"


@pytest.mark.parametrize("gpu_config", sorted(GPU_RECIPES))
def test_aquarium_gpu_configs_are_the_cpu_recipe_with_a_longer_schedule(gpu_config):
    gpu = LazyConfig.load(str(REPO / gpu_config))
    cpu = LazyConfig.load(str(REPO / GPU_RECIPES[gpu_config]))
    assert gpu.train.device == "cuda" and gpu.train.amp.enabled
    batch_ratio = gpu.dataloader.train.total_batch_size / cpu.dataloader.train.total_batch_size
    assert gpu.train.max_iter * batch_ratio >= 10 * cpu.train.max_iter  # at least 10x the images seen
    assert LazyConfig.to_py(gpu.model) == LazyConfig.to_py(cpu.model)


def test_imagenet_variant_loads_a_torchvision_resnet18_into_its_backbone(tmp_path):
    import torchvision

    from net_detr2.checkpoint import DetectionCheckpointer

    cfg = LazyConfig.load(str(REPO / "configs/aquarium/faster_rcnn_R18_FPN_imagenet.py"))
    assert cfg.model.input_format == cfg.dataloader.train.mapper.image_format == "RGB"
    torch.manual_seed(0)
    tv = torchvision.models.resnet18(weights=None)
    torch.save(tv.state_dict(), tmp_path / "resnet18-f37072fd.pth")
    model = instantiate(cfg.model)
    DetectionCheckpointer(model).load(str(tmp_path / "resnet18-f37072fd.pth"))
    bottom_up = model.backbone.bottom_up
    torch.testing.assert_close(bottom_up.stem.conv1.weight, tv.conv1.weight)
    torch.testing.assert_close(bottom_up.res5[1].conv2.weight, tv.layer4[1].conv2.weight)
    torch.testing.assert_close(bottom_up.res4[0].shortcut.norm.running_var, tv.layer3[0].downsample[1].running_var)
    assert not any(p.requires_grad for p in bottom_up.stem.parameters())  # frozen like detectron2's fine-tuning


def test_aquarium_recipe_trains_and_evaluates_on_a_valid_slice(tmp_path, aquarium_root):
    """A few iterations of the Faster R-CNN recipe through train_net.py; COCO evaluation of the first 6
    validation photos; predictions drawn by the Visualizer; the checkpoint then evaluated with the COCO and
    Pascal VOC evaluators together."""
    import importlib.util
    import json

    from net_detr2.checkpoint import DetectionCheckpointer
    from net_detr2.engine import default_argument_parser
    from net_detr2.evaluation import COCOEvaluator, PascalVOCDetectionEvaluator, inference_on_dataset

    name = "_aquarium_valid_first6"
    DatasetCatalog.register(name, lambda: DatasetCatalog.get("aquarium_valid")[:6])
    MetadataCatalog.get(name).set(
        thing_classes=MetadataCatalog.get("aquarium_valid").thing_classes, evaluator_type="coco"
    )
    try:
        spec = importlib.util.spec_from_file_location("train_net", REPO / "train_net.py")
        train_net = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(train_net)
        out = tmp_path / "out"
        args = default_argument_parser().parse_args(
            [
                "--config-file",
                str(REPO / CPU_RECIPES[0]),
                f"train.output_dir={out}",
                "train.max_iter=4",
                "train.eval_period=4",
                "train.log_period=2",
                "train.num_vis_images=2",
                "train.tensorboard=False",
                f"dataloader.test.dataset.names={name}",
                "dataloader.train.total_batch_size=2",
                "dataloader.train.num_workers=0",
            ]
        )
        results = train_net.main(args)
        cfg = LazyConfig.load(str(out / "config.yaml"))
        model = instantiate(cfg.model).eval()
        DetectionCheckpointer(model).load(str(out / "model_final.pth"))
        loader = instantiate(cfg.dataloader.test)
        coco = inference_on_dataset(model, loader, COCOEvaluator(name, distributed=False))["bbox"]
        voc = inference_on_dataset(model, loader, PascalVOCDetectionEvaluator(name, distributed=False))["bbox"]
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    bbox = results["bbox"]
    assert {"AP", "AP50", "APs", "AP-fish", "AP-stingray"} <= set(bbox)
    assert all(0.0 <= bbox[k] <= 100.0 or bbox[k] != bbox[k] for k in ("AP", "AP50"))  # NaN: class absent
    detections = json.loads((out / "coco_instances_results.json").read_text())
    assert detections and {d["category_id"] for d in detections} <= set(range(7))
    assert len(list((out / "predictions").glob("*.png"))) == 2 and (out / "predictions_grid.png").exists()
    assert (out / "model_final.pth").exists() and (out / "curves.png").exists()
    # the reloaded checkpoint reproduces the trainer's numbers; the VOC evaluator reads the same dicts
    assert coco["AP50"] == pytest.approx(bbox["AP50"], nan_ok=True)
    assert {"AP50-fish", "AP50_11pt", "AP50_area"} <= set(voc) and 0.0 <= voc["AP50-fish"] <= 100.0


def test_peer_benchmark_trains_and_evaluates_the_torchvision_model(aquarium_root, tmp_path):
    """benchmarks/bench_aquarium_peer.py's pieces, with a seconds-long budget and 3 validation photos."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_aquarium_peer", REPO / "benchmarks" / "bench_aquarium_peer.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    torch.manual_seed(0)
    model = bench.build_peer(7, our_sampling=True)
    assert model.roi_heads.fg_bg_sampler.batch_size_per_image == 128
    dicts = [d for d in DatasetCatalog.get("aquarium_train") if d["annotations"]][:8]
    run = bench.train_peer(model, dicts, budget_s=2.0, log_period=100, seed=0)
    assert run["iterations"] >= 1 and run["images"] == 4 * run["iterations"]
    name = "_aquarium_valid_first3"
    DatasetCatalog.register(name, lambda: DatasetCatalog.get("aquarium_valid")[:3])
    MetadataCatalog.get(name).set(
        thing_classes=MetadataCatalog.get("aquarium_valid").thing_classes, evaluator_type="coco"
    )
    try:
        bbox = bench.evaluate_peer(model, name)
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    assert {"AP", "AP50", "APs"} <= set(bbox)
    assert model.transform.min_size == (384,) and model.transform.max_size == 512
    with pytest.raises(ValueError, match="no evaluation result"):
        (tmp_path / "metrics.json").write_text('{"iteration": 3, "total_loss": 1.0}\n')
        bench.read_our_run(tmp_path)
