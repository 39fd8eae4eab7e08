from __future__ import annotations

import numpy as np
import pytest
import torch

from net_detr2.structures import Boxes, BoxMode, ImageList, Instances, pairwise_ioa, pairwise_iou


def test_boxmode_conversions_by_hand():
    xywh = [10.0, 20.0, 30.0, 40.0]
    assert BoxMode.convert(xywh, BoxMode.XYWH_ABS, BoxMode.XYXY_ABS) == [10.0, 20.0, 40.0, 60.0]
    arr = np.array([[10.0, 20.0, 40.0, 60.0]])
    back = BoxMode.convert(arr, BoxMode.XYXY_ABS, BoxMode.XYWH_ABS)
    np.testing.assert_allclose(back, [[10, 20, 30, 40]])
    rel = BoxMode.convert(
        torch.tensor([[10.0, 20.0, 40.0, 60.0]]), BoxMode.XYXY_ABS, BoxMode.XYWH_REL, image_size=(100, 200)
    )
    torch.testing.assert_close(rel, torch.tensor([[0.05, 0.2, 0.15, 0.4]]))
    absol = BoxMode.convert(rel, BoxMode.XYWH_REL, BoxMode.XYXY_ABS, image_size=(100, 200))
    torch.testing.assert_close(absol, torch.tensor([[10.0, 20.0, 40.0, 60.0]]))
    with pytest.raises(ValueError, match="image_size"):
        BoxMode.convert([0, 0, 1, 1], BoxMode.XYXY_REL, BoxMode.XYXY_ABS)
    # the input is not modified
    t = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    BoxMode.convert(t, BoxMode.XYWH_ABS, BoxMode.XYXY_ABS)
    assert t.tolist() == [[1.0, 2.0, 3.0, 4.0]]


def test_boxes_ops():
    b = Boxes(torch.tensor([[0.0, 0.0, 10.0, 20.0], [5.0, 5.0, 5.0, 8.0], [-5.0, -5.0, 120.0, 50.0]]))
    assert b.area().tolist() == [200.0, 0.0, 125.0 * 55.0]
    assert b.nonempty().tolist() == [True, False, True]
    assert b.get_centers().tolist() == [[5.0, 10.0], [5.0, 6.5], [57.5, 22.5]]
    c = b.clone()
    c.clip((40, 100))
    assert c.tensor[2].tolist() == [0.0, 0.0, 100.0, 40.0]
    assert b.tensor[2].tolist() == [-5.0, -5.0, 120.0, 50.0]
    c.scale(2.0, 0.5)
    assert c.tensor[0].tolist() == [0.0, 0.0, 20.0, 10.0]
    assert len(b[1]) == 1 and b[1].tensor.tolist() == [[5.0, 5.0, 5.0, 8.0]]
    assert len(b[b.nonempty()]) == 2
    assert len(b[torch.tensor([2, 0])]) == 2 and b[torch.tensor([2, 0])].tensor[1, 3] == 20.0
    cat = Boxes.cat([b, b[:1]])
    assert len(cat) == 4
    assert len(Boxes(torch.zeros(0))) == 0
    with pytest.raises(ValueError, match="Nx4"):
        Boxes(torch.zeros(3, 5))
    assert Boxes(torch.zeros(2, 4, dtype=torch.int64)).tensor.dtype == torch.float32


def test_pairwise_iou_and_ioa_by_hand():
    a = Boxes(torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 0.0, 0.0]]))
    b = Boxes(torch.tensor([[5.0, 5.0, 15.0, 15.0], [0.0, 0.0, 5.0, 10.0], [20.0, 20.0, 30.0, 30.0]]))
    iou = pairwise_iou(a, b)
    # 25 / (100 + 100 - 25); 50 / 100; disjoint
    torch.testing.assert_close(iou[0], torch.tensor([25.0 / 175.0, 0.5, 0.0]))
    assert iou[1].tolist() == [0.0, 0.0, 0.0]  # empty box: no nan
    ioa = pairwise_ioa(a, b)
    torch.testing.assert_close(ioa[0], torch.tensor([0.25, 1.0, 0.0]))


def test_instances_fields_indexing_cat():
    inst = Instances((20, 30), scores=torch.tensor([0.75, 0.25, 0.5]))
    inst.pred_boxes = Boxes(torch.tensor([[0.0, 0, 1, 1], [1.0, 1, 2, 2], [2.0, 2, 3, 3]]))
    inst.names = ["a", "b", "c"]
    assert inst.has("scores") and len(inst) == 3 and inst.image_size == (20, 30)
    with pytest.raises(ValueError, match="length"):
        inst.bad = torch.zeros(2)
    with pytest.raises(AttributeError, match="no field 'gt_boxes'"):
        _ = inst.gt_boxes
    sel = inst[inst.scores > 0.3]
    assert sel.scores.tolist() == [0.75, 0.5] and sel.names == ["a", "c"]
    assert sel.pred_boxes.tensor[1, 0] == 2.0
    assert inst[-1].names == ["c"] and inst[1].scores.tolist() == [0.25]
    assert inst[torch.tensor([2, 0])].names == ["c", "a"]
    assert inst[1:].scores.tolist() == [0.25, 0.5]
    both = Instances.cat([inst, sel])
    assert len(both) == 5 and both.names[-1] == "c" and len(both.pred_boxes) == 5
    inst.remove("names")
    assert not inst.has("names")
    moved = inst.to("cpu")
    assert moved.scores is not None and moved.image_size == (20, 30)


def test_image_list_pads_and_keeps_sizes():
    a = torch.ones(3, 5, 7)
    b = torch.ones(3, 8, 4) * 2
    il = ImageList.from_tensors([a, b], size_divisibility=4, pad_value=-1.0)
    assert il.tensor.shape == (2, 3, 8, 8)
    assert il.image_sizes == [(5, 7), (8, 4)]
    assert il.tensor[0, :, 5:, :].eq(-1).all() and il.tensor[0, :, :, 7:].eq(-1).all()
    assert il[1].shape == (3, 8, 4) and il[1].eq(2).all()
    single = ImageList.from_tensors([a], size_divisibility=32)
    assert single.tensor.shape == (1, 3, 32, 32) and single.tensor[0, :, :5, :7].eq(1).all()
