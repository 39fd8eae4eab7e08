"""Visualizer draws boxes where they belong; save_prediction_images writes the drawn predictions."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from net_detr2.structures import Boxes, BoxMode, Instances
from net_detr2.utils.colormap import PALETTE_SIZE, colormap
from net_detr2.utils.visualizer import ColorMode, Visualizer, save_prediction_images

RED = (255, 0, 0)


def _read_png_rgb(path):
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img is not None, path
    return img[:, :, ::-1]


def test_box_edges_coloured_inside_and_outside_untouched(tmp_path):
    img = np.zeros((100, 120, 3), np.uint8)
    vis = Visualizer(img).overlay_instances(boxes=np.array([[20, 30, 80, 70]]), assigned_colors=[RED])
    path = tmp_path / "box.png"
    vis.save(path)
    out = _read_png_rgb(path)
    assert out.shape == (100, 120, 3)
    np.testing.assert_array_equal(out, vis.get_image())
    for y, x in [(30, 50), (70, 50), (50, 20), (50, 80), (30, 20), (70, 80)]:  # on the four edges
        assert tuple(out[y, x]) == RED, (y, x)
    for y, x in [(50, 50), (40, 30), (60, 70)]:  # inside
        assert tuple(out[y, x]) == (0, 0, 0), (y, x)
    for y, x in [(5, 5), (95, 115), (50, 100), (90, 50)]:  # far outside
        assert tuple(out[y, x]) == (0, 0, 0), (y, x)
    assert img.sum() == 0  # the input is not modified


def test_draw_dataset_dict_converts_modes_and_labels_outside(tmp_path):
    img = np.zeros((120, 160, 3), np.uint8)
    dic = {
        "height": 120,
        "width": 160,
        "annotations": [
            {"bbox": [40, 50, 60, 40], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 1},  # -> 40,50,100,90
        ],
    }
    vis = Visualizer(img, metadata={"thing_classes": ["cat", "dog"]}).draw_dataset_dict(dic)
    out = vis.get_image()
    color = tuple(int(round(float(v))) for v in colormap(rgb=True)[0])
    assert tuple(out[50, 70]) == color and tuple(out[90, 70]) == color and tuple(out[70, 100]) == color
    assert tuple(out[70, 70]) == (0, 0, 0)  # interior stays clean: the label is above the box
    label_zone = out[30:49, 40:100]
    assert (label_zone.reshape(-1, 3) == color).all(axis=1).sum() > 50  # label background in box colour
    assert (label_zone.sum(axis=2) != color_sum(color)).any()  # and some text pixels on it
    assert out[100:, :].sum() == 0


def color_sum(c):
    return int(sum(c))


def _preds(boxes, scores, classes, size=(100, 100)):
    inst = Instances(size)
    inst.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32))
    inst.scores = torch.tensor(scores)
    inst.pred_classes = torch.tensor(classes)
    return inst


def test_small_box_label_is_outside_and_moves_below_at_top_edge():
    img = np.zeros((100, 100, 3), np.uint8)
    # small box in the middle: label above it
    out = (
        Visualizer(img, {"thing_classes": ["car"]})
        .draw_instance_predictions(_preds([[50, 50, 58, 58]], [0.9], [0]))
        .get_image()
    )
    assert out[52:57, 52:57].sum() == 0  # interior of the small box untouched
    assert out[35:48, 50:60].sum() > 0 and out[60:75, 50:60].sum() == 0
    # box touching the top: no room above, label goes below
    out = (
        Visualizer(img, {"thing_classes": ["car"]})
        .draw_instance_predictions(_preds([[50, 0, 58, 8]], [0.9], [0]))
        .get_image()
    )
    assert out[2:7, 52:57].sum() == 0
    assert out[10:25, 50:60].sum() > 0


def test_scale_and_per_instance_colours():
    img = np.zeros((50, 60, 3), np.uint8)
    vis = Visualizer(img, scale=2.0).draw_instance_predictions(
        _preds([[10, 10, 20, 20], [30, 10, 40, 20]], [0.9, 0.8], [0, 0])
    )
    out = vis.get_image()
    assert out.shape == (100, 120, 3)
    cmap = colormap(rgb=True)
    c0, c1 = (tuple(int(round(float(v))) for v in cmap[0]), tuple(int(round(float(v))) for v in cmap[1]))
    assert c0 != c1
    assert tuple(out[30, 20]) == c0 and tuple(out[30, 60]) == c1  # left edges at 2x coordinates
    assert out[30, 30].sum() == 0


def test_segmentation_mode_colours_by_class_and_palette_is_distinct():
    img = np.zeros((100, 120, 3), np.uint8)
    meta = {"thing_classes": ["a", "b"], "thing_colors": [(0, 0, 255), (0, 255, 0)]}
    out = (
        Visualizer(img, meta, instance_mode=ColorMode.SEGMENTATION)
        .overlay_instances(boxes=np.array([[10, 20, 20, 30]]), assigned_colors=None)
        .get_image()
    )
    assert out.sum() > 0
    out = (
        Visualizer(img, meta, instance_mode=ColorMode.SEGMENTATION)
        .draw_instance_predictions(_preds([[10, 40, 20, 50], [60, 40, 70, 50]], [0.9, 0.8], [1, 1]))
        .get_image()
    )
    assert tuple(out[45, 10]) == (0, 255, 0) and tuple(out[45, 60]) == (0, 255, 0)
    pal = colormap(rgb=True)
    assert pal.shape == (PALETTE_SIZE, 3)
    d = np.abs(pal[:, None, :] - pal[None, :, :]).sum(-1) + np.eye(PALETTE_SIZE) * 1e9
    assert d.min() > 10  # no two palette colours are identical
    assert d[:20, :20].min() > 80  # the first instances of an image get clearly different colours


def test_many_boxes_are_all_drawn_big_first():
    """300 small boxes inside one big one, each its own colour: every small box's corners keep its colour (the big
    box is drawn first, so none is painted over) and nothing is drawn inside a small box."""
    img = np.zeros((480, 640, 3), np.uint8)
    ys, xs = np.meshgrid(np.arange(15) * 30 + 20, np.arange(20) * 30 + 20, indexing="ij")
    small = np.stack([xs.ravel(), ys.ravel(), xs.ravel() + 18, ys.ravel() + 18], axis=1)
    boxes = np.concatenate([small, [[5, 5, 630, 470]]]).astype(np.float32)
    colors = [(1 + i % 250, 1 + (7 * i) % 250, 1 + i // 250) for i in range(len(small))] + [(255, 255, 255)]
    out = Visualizer(img).overlay_instances(boxes=boxes, assigned_colors=colors).get_image()
    for (x0, y0, x1, y1), color in zip(small.tolist(), colors):
        for y, x in [(y0, x0), (y0, x1), (y1, x0), (y1, x1)]:
            assert tuple(out[y, x]) == color, (x0, y0, color)
        assert tuple(out[y0 + 9, x0 + 9]) == (0, 0, 0)
    assert tuple(out[5, 320]) == (255, 255, 255) and tuple(out[470, 320]) == (255, 255, 255)


def test_bad_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="HxWx3"):
        Visualizer(np.zeros((2, 3, 4, 5)))
    vis = Visualizer(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(ValueError, match="2 boxes but 1 labels"):
        vis.overlay_instances(boxes=np.zeros((2, 4)), labels=["x"])
    with pytest.raises(KeyError, match="bbox_mode"):
        vis.draw_dataset_dict({"file_name": "f.jpg", "annotations": [{"bbox": [0, 0, 1, 1]}]})
    with pytest.raises(OSError, match="could not write"):
        vis.output.save(tmp_path / "x.notanextension")


class _FixedModel(nn.Module):
    input_format = "BGR"

    def __init__(self):
        super().__init__()
        self.p = nn.Parameter(torch.zeros(1))
        self.grad_flags = []

    def forward(self, batch):
        self.grad_flags.append(torch.is_grad_enabled())
        outs = []
        for b in batch:
            outs.append(
                {
                    "instances": _preds(
                        [[10, 10, 30, 30], [80, 5, 100, 25]], [0.9, 0.1], [0, 1], (b["height"], b["width"])
                    )
                }
            )
        return outs


def test_save_prediction_images(tmp_path):
    files = []
    for i in range(3):
        p = tmp_path / f"pic{i}.jpg"
        cv2.imwrite(str(p), np.zeros((96, 128, 3), np.uint8))
        files.append(p)
    # the loader image is resized (as by a test mapper); the boxes are in the original frame
    loader = [
        [{"file_name": str(f), "image_id": i, "height": 96, "width": 128, "image": torch.zeros(3, 24, 32)}]
        for i, f in enumerate(files)
    ]
    model = _FixedModel().train()
    out_dir = tmp_path / "vis"
    paths = save_prediction_images(
        model, loader, {"thing_classes": ["x", "y"]}, out_dir, max_images=2, score_threshold=0.3
    )
    assert paths == [str(out_dir / "pic0.png"), str(out_dir / "pic1.png")]
    assert model.training and model.grad_flags == [False, False]
    img = _read_png_rgb(paths[0])
    assert img.shape == (96, 128, 3)
    assert img[20, 10].sum() > 0 and img[20, 20].sum() == 0  # drawn box edge; clean interior
    assert img[15, 80].sum() == 0 and img[25, 90].sum() == 0  # the 0.1-score box is not drawn


def test_save_prediction_images_missing_file(tmp_path):
    loader = [[{"file_name": str(tmp_path / "nope.jpg"), "image_id": 0, "height": 8, "width": 8}]]
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        save_prediction_images(_FixedModel(), loader, None, tmp_path / "o")


def test_image_grid_tiles_in_rows_keeping_aspect(tmp_path):
    from net_detr2.utils.visualizer import make_image_grid, save_image_grid

    red = np.zeros((50, 100, 3), np.uint8)
    red[..., 0] = 255
    tall = np.zeros((200, 100, 3), np.uint8)
    tall[..., 2] = 255
    grid = make_image_grid([red, tall, red], columns=2, cell_width=40, gap=2)
    # row 1: 20-px-high red and 80-px-high blue cells; row 2: one red cell; every row as tall as the
    # tallest cell (80 px); gaps of 2 px, white
    assert grid.shape == (2 + 80 + 2 + 80 + 2, 2 * 40 + 3 * 2, 3)
    assert (grid[2:22, 2:42] == [255, 0, 0]).all() and (grid[2:82, 44:84] == [0, 0, 255]).all()
    assert (grid[22:82, 2:42] == 255).all()  # below the short cell of the first row
    assert (grid[84:104, 2:42] == [255, 0, 0]).all() and (grid[84:164, 44:84] == 255).all()
    assert (grid[104:164, 2:42] == 255).all()  # the second row keeps the first row's height
    assert make_image_grid([red], columns=4, cell_width=40, gap=0).shape == (20, 40, 3)  # fewer columns
    with pytest.raises(ValueError, match="no images"):
        make_image_grid([])

    import cv2

    for i, img in enumerate((red, tall)):
        cv2.imwrite(str(tmp_path / f"{i}.png"), img[:, :, ::-1])
    out = save_image_grid([tmp_path / "0.png", tmp_path / "1.png"], tmp_path / "grid.png", columns=2, cell_width=40)
    assert cv2.imread(out)[..., ::-1].shape == (4 + 80 + 4, 2 * 40 + 3 * 4, 3)


def test_ground_truth_beside_predictions_and_empty_panel_message():
    from net_detr2.structures import Boxes, BoxMode, Instances
    from net_detr2.utils.visualizer import draw_ground_truth_and_predictions

    img = np.zeros((120, 160, 3), np.uint8)
    gt = {"annotations": [{"bbox": [20, 30, 40, 30], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0}]}
    meta = {"thing_classes": ["x"]}
    low = Instances((120, 160), pred_boxes=Boxes(torch.tensor([[20.0, 30, 60, 60]])))
    low.scores, low.pred_classes = torch.tensor([0.2]), torch.tensor([0])
    pair = draw_ground_truth_and_predictions(img, gt, low, meta, score_threshold=0.5)
    # two 160-px panels and a 6-px gap, both under a title strip of the same height
    assert pair.shape[1] == 2 * 160 + 6 and pair.shape[0] > 120
    strip = pair.shape[0] - 120
    left, right = pair[strip:, :160], pair[strip:, 166:]
    assert left[30, 30:50].max() > 0 and not left[70:100, 100:150].any()  # the ground-truth box's top edge
    # the only prediction is below the threshold: not drawn, and the panel says so on a grey band
    assert not right[30, 25:55].any() or (right[30, 25:55] == 40).all()
    band = right[50:70, :]
    assert (band == 40).any() and (band > 200).any()  # grey band with white text across the middle
    assert (pair[:strip, :160] < 100).any() and (pair[:strip, :160] == 255).mean() > 0.5  # black title on white
    high = Instances((120, 160), pred_boxes=Boxes(torch.tensor([[20.0, 30, 60, 60]])))
    high.scores, high.pred_classes = torch.tensor([0.9]), torch.tensor([0])
    right_high = draw_ground_truth_and_predictions(img, gt, high, meta, score_threshold=0.5)[strip:, 166:]
    assert not (right_high[50:70] == 40).any()  # no message when something is drawn
    only = draw_ground_truth_and_predictions(img, None, low, meta, score_threshold=0.5)
    assert only.shape == (120, 160, 3) and (only == 40).any()
