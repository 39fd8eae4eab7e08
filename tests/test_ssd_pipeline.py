"""SSD's pieces fit each other: every prediction sits on its own default box, every level learns, and the
training targets decoded through the evaluation path give back the ground truth in the picture's frame."""

from __future__ import annotations

import copy

import cv2
import pytest
import torch

import net_detr2.data.transforms as T
from net_detr2.data import DatasetCatalog, DatasetMapper, MetadataCatalog
from net_detr2.data.datasets.shapes import SHAPES_CLASSES, render_shapes_image
from net_detr2.evaluation import COCOEvaluator
from net_detr2.modeling.anchor_generator import DefaultBoxGenerator, ssd_default_box_sizes
from net_detr2.modeling.meta_arch.ssd import SSDHead
from net_detr2.modeling.postprocessing import detector_postprocess
from net_detr2.structures import Boxes, BoxMode, Instances
from net_detr2.utils.testing import ssd_training_inputs, tiny_ssd

SHAPES_300 = [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]


def test_each_prediction_sits_on_its_default_box():
    """A head that copies its input's centre tap answers only where the feature map is lit: the
    predictions at one lit cell of a level must be exactly the default boxes centred on that cell."""
    gen = DefaultBoxGenerator(**ssd_default_box_sizes(300, "coco"), clip=False)
    priors = gen(SHAPES_300, (300, 300))
    head = SSDHead(in_channels=[2] * 6, num_anchors=gen.num_anchors, num_classes=1)
    with torch.no_grad():
        for conv in list(head.cls_score) + list(head.bbox_pred):
            conv.weight.zero_()
            conv.bias.zero_()
            conv.weight[:, 0, 1, 1] = 1.0
    centres = (priors[:, :2] + priors[:, 2:]) / 2
    steps = gen.steps
    start = 0
    for level, (h, w) in enumerate(SHAPES_300):
        feats = [torch.zeros(1, 2, hh, ww) for hh, ww in SHAPES_300]
        i, j = h // 2, w - 1  # a cell off the diagonal: rows and columns must not be swapped
        feats[level][0, 0, i, j] = 1.0
        logits, deltas = head(feats)
        lit = (logits[0].abs().sum(1) > 0).nonzero()[:, 0]
        assert torch.equal(lit, (deltas[0].abs().sum(1) > 0).nonzero()[:, 0])
        assert len(lit) == gen.num_anchors[level]
        expected = torch.tensor([(j + 0.5) * steps[level], (i + 0.5) * steps[level]])
        torch.testing.assert_close(centres[lit], expected.expand(len(lit), 2))
        assert lit.min() >= start
        start += h * w * gen.num_anchors[level]


def test_every_level_and_the_backbone_get_gradient():
    torch.manual_seed(0)
    model = tiny_ssd()
    inputs = ssd_training_inputs(2)
    # a picture-sized object too, so that the deepest (1 x 1) level has a positive
    inputs[0]["instances"] = Instances.cat(
        [
            inputs[0]["instances"],
            Instances(
                (300, 300), gt_boxes=Boxes(torch.tensor([[10.0, 5.0, 295.0, 290.0]])), gt_classes=torch.tensor([1])
            ),
        ]
    )
    losses = model(inputs)
    sum(losses.values()).backward()
    for level in range(6):
        assert model.head.cls_score[level].weight.grad.abs().sum() > 0, level
        assert model.head.bbox_pred[level].weight.grad.abs().sum() > 0, level
    for name, p in model.backbone.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.fixture
def shapes_pictures(tmp_path):
    """Three `shapes` pictures (320 wide, their own heights) as a registered dataset of PNG files."""
    dicts = []
    for i in range(3):
        image, objects = render_shapes_image(seed=200 + i)
        cv2.imwrite(str(tmp_path / f"{i}.png"), image)
        dicts.append(
            {
                "image_id": i,
                "file_name": str(tmp_path / f"{i}.png"),
                "height": image.shape[0],
                "width": image.shape[1],
                "annotations": [
                    {"bbox": o["bbox"], "bbox_mode": BoxMode.XYXY_ABS, "category_id": o["category_id"], "iscrowd": 0}
                    for o in objects
                ],
            }
        )
    name = "_ssd_pipeline_shapes"
    DatasetCatalog.register(name, lambda: copy.deepcopy(dicts))
    MetadataCatalog.get(name).set(thing_classes=list(SHAPES_CLASSES))
    yield name, dicts
    DatasetCatalog.remove(name)
    MetadataCatalog.remove(name)


def test_perfect_head_outputs_score_full_ap_in_the_picture_frame(shapes_pictures):
    """Head outputs built from the training targets (one-hot classes at the positives, the encoded boxes)
    go through `inference` and the rescaling to each picture's own ``height`` x ``width`` (the mapper
    squeezed it to 300 x 300): COCO AP must be 100, so the eval path decodes with the variances the
    training encodes with, and the frames at training and test agree."""
    name, dicts = shapes_pictures
    model = tiny_ssd(num_classes=len(SHAPES_CLASSES)).eval()
    mapper = DatasetMapper(True, augmentations=[T.Resize((300, 300))])
    priors = model.prior_generator(SHAPES_300, (300, 300))
    evaluator = COCOEvaluator(name, output_dir=None)
    evaluator.reset()
    num_objects = 0
    for d in dicts:
        x = mapper(copy.deepcopy(d))
        num_objects += len(x["instances"])
        labels, deltas = model.label_default_boxes(priors, [x["instances"]])
        logits = torch.full((1, priors.shape[0], len(SHAPES_CLASSES) + 1), -10.0).scatter_(2, labels[..., None], 10.0)
        result = model.inference(priors, logits, deltas, [(300, 300)])[0]
        result = detector_postprocess(result, d["height"], d["width"])
        assert len(result) == len(x["instances"])
        evaluator.process([d], [{"instances": result}])
    assert num_objects >= 15
    ap = evaluator.evaluate()["bbox"]
    assert ap["AP"] == pytest.approx(100.0), ap


def test_head_prior_prob_sets_the_initial_foreground_probability():
    torch.manual_seed(0)
    feats = [torch.randn(2, 16, s, s).relu() for s in (38, 19, 10, 5, 3, 1)]
    head = SSDHead(in_channels=[16] * 6, num_anchors=[4, 6, 6, 6, 4, 4], num_classes=5, prior_prob=0.01)
    logits, deltas = head(feats)
    p_fg = logits.softmax(-1)[..., :5].sum(-1)
    assert p_fg.mean().item() == pytest.approx(0.01, rel=0.05)
    assert p_fg.max().item() < 0.02  # no default box starts as a confident detection
    assert deltas.abs().max() < 0.5
    # the SSD release's Xavier initialisation leaves many boxes far from the prior
    xavier = SSDHead(in_channels=[16] * 6, num_anchors=[4, 6, 6, 6, 4, 4], num_classes=5)
    assert xavier(feats)[0].softmax(-1)[..., :5].sum(-1).max() > 0.5
    with pytest.raises(ValueError, match="prior_prob must lie in"):
        SSDHead(in_channels=[16], num_anchors=[4], num_classes=5, prior_prob=1.0)
