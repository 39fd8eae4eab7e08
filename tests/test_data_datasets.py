"""Catalogs and dataset loaders: COCO json, VOC xml, YOLO (Aquarium), TT100K conversion, box sanitising."""

from __future__ import annotations

import importlib.util
import json
import logging
from pathlib import Path

import pytest

from net_detr2.data import DatasetCatalog, MetadataCatalog, get_detection_dataset_dicts
from net_detr2.data.build import sanitize_dataset_boxes
from net_detr2.data.datasets import (
    TT100K_45_CLASSES,
    convert_tt100k_to_coco,
    load_coco_json,
    load_voc_instances,
    register_coco_instances,
    register_pascal_voc,
)
from net_detr2.data.datasets.tt100k import register_tt100k
from net_detr2.structures import BoxMode

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def unique_name(request):
    """A dataset name for this test, removed from both catalogs afterwards."""
    name = f"_test_{request.node.name}"
    yield name
    for cat in (DatasetCatalog, MetadataCatalog):
        if name in cat:
            cat.remove(name)


def test_catalog_unknown_name_lists_registered():
    with pytest.raises(KeyError) as e:
        DatasetCatalog.get("no_such_dataset")
    msg = str(e.value)
    assert "'no_such_dataset' is not registered" in msg
    for name in ("coco_2017_train", "voc_2007_test", "shapes_train", "aquarium_valid", "tt100k_test"):
        assert name in msg


def test_catalog_register_twice_and_metadata_set_once(unique_name):
    DatasetCatalog.register(unique_name, lambda: [{"file_name": "a"}])
    assert DatasetCatalog.get(unique_name) == [{"file_name": "a"}]
    with pytest.raises(ValueError, match=f"dataset '{unique_name}' is already registered with a different loader"):
        DatasetCatalog.register(unique_name, lambda: [])
    meta = MetadataCatalog.get(unique_name)
    meta.thing_classes = ["a", "b"]
    meta.thing_classes = ["a", "b"]  # same value: fine
    with pytest.raises(AssertionError, match="thing_classes"):
        meta.thing_classes = ["b", "a"]
    assert meta.get("evaluator_type", "none") == "none"
    with pytest.raises(AttributeError, match="thing_classes"):
        _ = meta.json_file  # the message lists the existing keys


def _write_coco(tmp_path, anns, categories=((3, "cat3"), (7, "cat7"), (11, "cat11"))):
    data = {
        "images": [
            {"id": 1, "file_name": "a.jpg", "height": 100, "width": 200},
            {"id": 2, "file_name": "b.jpg", "height": 50, "width": 60},
            {"id": 5, "file_name": "c.jpg", "height": 80, "width": 80},
        ],
        "annotations": anns,
        "categories": [{"id": i, "name": n} for i, n in categories],
    }
    (tmp_path / "imgs").mkdir(exist_ok=True)
    p = tmp_path / "inst.json"
    p.write_text(json.dumps(data))
    return p


def test_load_coco_json_contiguous_ids_crowd_and_empty_images(tmp_path, unique_name):
    anns = [
        {"id": 1, "image_id": 1, "category_id": 7, "bbox": [10, 20, 30, 40], "iscrowd": 0, "area": 1200},
        {"id": 2, "image_id": 1, "category_id": 11, "bbox": [0, 0, 5, 5], "iscrowd": 1, "area": 25},
        {"id": 3, "image_id": 5, "category_id": 3, "bbox": [1, 2, 3, 4], "iscrowd": 1, "area": 12},
    ]
    json_file = _write_coco(tmp_path, anns)
    register_coco_instances(unique_name, {}, str(json_file), str(tmp_path / "imgs"))
    dicts = DatasetCatalog.get(unique_name)
    assert [d["image_id"] for d in dicts] == [1, 2, 5]  # the image without annotations is kept
    assert dicts[0]["file_name"] == str(tmp_path / "imgs" / "a.jpg")
    assert (dicts[0]["height"], dicts[0]["width"]) == (100, 200)
    a0, a1 = dicts[0]["annotations"]
    assert a0 == {"iscrowd": 0, "bbox": [10.0, 20.0, 30.0, 40.0], "category_id": 1, "bbox_mode": BoxMode.XYWH_ABS}
    assert a1["category_id"] == 2 and a1["iscrowd"] == 1
    assert dicts[1]["annotations"] == []
    assert dicts[2]["annotations"][0]["category_id"] == 0
    meta = MetadataCatalog.get(unique_name)
    assert meta.thing_classes == ["cat3", "cat7", "cat11"]
    assert meta.thing_dataset_id_to_contiguous_id == {3: 0, 7: 1, 11: 2}
    assert meta.evaluator_type == "coco" and meta.json_file == str(json_file)
    # training: images with no (non-crowd) annotation go; image 5 has only a crowd box
    assert [d["image_id"] for d in get_detection_dataset_dicts(unique_name)] == [1]
    assert len(get_detection_dataset_dicts(unique_name, filter_empty=False)) == 3
    # without a dataset name the json's ids are returned (detectron2's behaviour)
    assert load_coco_json(str(json_file), str(tmp_path / "imgs"))[0]["annotations"][0]["category_id"] == 7


def test_load_coco_json_unknown_category_names_image_and_id(tmp_path):
    anns = [{"id": 1, "image_id": 2, "category_id": 99, "bbox": [1, 1, 2, 2], "iscrowd": 0}]
    json_file = _write_coco(tmp_path, anns)
    with pytest.raises(ValueError) as e:
        load_coco_json(str(json_file), str(tmp_path / "imgs"), "_unknown_cat")
    msg = str(e.value)
    assert "b.jpg" in msg and "category_id 99" in msg and "(id 2)" in msg
    MetadataCatalog.remove("_unknown_cat")


def test_missing_files_name_the_path(tmp_path, unique_name):
    register_coco_instances(unique_name, {}, str(tmp_path / "nope.json"), str(tmp_path))
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nope.json")):
        DatasetCatalog.get(unique_name)
    # built-in names look under $NET_DETR2_DATASETS (./datasets by default)
    dirname = MetadataCatalog.get("voc_2007_test").dirname
    if not Path(dirname, "ImageSets", "Main", "test.txt").exists():
        with pytest.raises(FileNotFoundError, match=str(Path(dirname, "ImageSets", "Main", "test.txt"))):
            DatasetCatalog.get("voc_2007_test")
    json_file = MetadataCatalog.get("coco_2017_val").json_file
    if not Path(json_file).exists():
        with pytest.raises(FileNotFoundError, match=json_file):
            DatasetCatalog.get("coco_2017_val")


def _voc_fixture(root: Path):
    (root / "Annotations").mkdir(parents=True)
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / "mini.txt").write_text("000001\n000002\n")
    (root / "Annotations" / "000001.xml").write_text(
        "<annotation><size><width>353</width><height>500</height><depth>3</depth></size>"
        "<object><name>dog</name><difficult>0</difficult><bndbox><xmin>48</xmin><ymin>240</ymin>"
        "<xmax>195</xmax><ymax>371</ymax></bndbox></object>"
        "<object><name>person</name><difficult>1</difficult><bndbox><xmin>8</xmin><ymin>12</ymin>"
        "<xmax>352</xmax><ymax>498</ymax></bndbox></object></annotation>"
    )
    (root / "Annotations" / "000002.xml").write_text(
        "<annotation><size><width>100</width><height>90</height></size>"
        "<object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>100</xmax><ymax>90</ymax></bndbox>"
        "</object></annotation>"
    )


def test_voc_loader_keeps_difficult_and_shifts_coordinates(tmp_path, unique_name):
    root = tmp_path / "VOC2007"
    _voc_fixture(root)
    register_pascal_voc(unique_name, str(root), "mini", 2007)
    dicts = DatasetCatalog.get(unique_name)
    assert [d["image_id"] for d in dicts] == ["000001", "000002"]
    assert dicts[0]["file_name"] == str(root / "JPEGImages" / "000001.jpg")
    assert (dicts[0]["height"], dicts[0]["width"]) == (500, 353)
    dog, person = dicts[0]["annotations"]
    assert dog == {
        "category_id": 11,
        "bbox": [47.0, 239.0, 195.0, 371.0],
        "bbox_mode": BoxMode.XYXY_ABS,
        "difficult": 0,
    }
    assert person["category_id"] == 14 and person["difficult"] == 1
    # a whole-image VOC box (1..W, 1..H) becomes exactly [0, 0, W, H]
    assert dicts[1]["annotations"][0]["bbox"] == [0.0, 0.0, 100.0, 90.0]
    assert dicts[1]["annotations"][0]["difficult"] == 0
    meta = MetadataCatalog.get(unique_name)
    assert (meta.evaluator_type, meta.year, meta.split, meta.dirname) == ("pascal_voc", 2007, "mini", str(root))
    # an unknown class names the xml file
    (root / "Annotations" / "000002.xml").write_text(
        "<annotation><size><width>10</width><height>9</height></size><object><name>unicorn</name>"
        "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object></annotation>"
    )
    with pytest.raises(ValueError, match="000002.xml.*unicorn"):
        load_voc_instances(str(root), "mini")


def test_sanitize_boxes_clips_and_drops_with_counts(caplog):
    dicts = [
        {
            "file_name": "x.jpg",
            "height": 100,
            "width": 200,
            "annotations": [
                {"bbox": [10, 10, 20, 20], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0},  # inside
                {"bbox": [190, 90, 20, 20], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 1},  # clipped
                {"bbox": [-5, 20, 50, 30], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 2},  # clipped
                {"bbox": [250, 10, 260, 20], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 3},  # outside
                {"bbox": [30, 30, 0, 10], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 4},  # zero width
            ],
        }
    ]
    with caplog.at_level(logging.WARNING, logger="net_detr2.data.build"):
        counts = sanitize_dataset_boxes(dicts, "toy")
    assert counts == {"boxes": 5, "clipped": 2, "dropped": 2}
    annos = dicts[0]["annotations"]
    assert [a["category_id"] for a in annos] == [0, 1, 2]
    assert annos[1]["bbox"] == [190.0, 90.0, 10.0, 10.0]  # written back in XYWH
    assert annos[2]["bbox"] == [0.0, 20.0, 50.0, 30.0]
    assert "Dataset 'toy': of 5 boxes, 2 were clipped to their image and 2 dropped" in caplog.text


def test_tt100k_conversion_and_registration(tmp_path, unique_name):
    ann = {
        "types": ["pl80", "xyz"],
        "imgs": {
            "10": {
                "path": "train/10.jpg",
                "id": 10,
                "objects": [
                    {"category": "pl80", "bbox": {"xmin": 100.5, "ymin": 200.0, "xmax": 120.5, "ymax": 221.0}},
                    {"category": "xyz", "bbox": {"xmin": 1, "ymin": 1, "xmax": 5, "ymax": 5}},
                    {"category": "i2", "bbox": {"xmin": 10, "ymin": 20, "xmax": 30, "ymax": 50}},
                ],
            },
            "11": {"path": "train/11.jpg", "id": 11, "objects": []},
            "12": {"path": "test/12.jpg", "id": 12, "objects": []},
        },
    }
    coco = convert_tt100k_to_coco(ann, ["10", "11"])
    assert [im["id"] for im in coco["images"]] == [10, 11]
    assert coco["images"][0] == {"id": 10, "file_name": "train/10.jpg", "height": 2048, "width": 2048}
    assert len(coco["categories"]) == 45 and coco["categories"][0]["name"] == "i2"
    pl80 = TT100K_45_CLASSES.index("pl80") + 1
    assert [(a["category_id"], a["bbox"]) for a in coco["annotations"]] == [
        (pl80, [100.5, 200.0, 20.0, 21.0]),
        (1, [10.0, 20.0, 20.0, 30.0]),
    ]
    with pytest.raises(KeyError, match="'99'"):
        convert_tt100k_to_coco(ann, ["99"])
    # the EFPN protocol's label set: the signs outside the 45 become one 46th class
    other = convert_tt100k_to_coco(ann, ["10", "11"], other_class="other")
    assert len(other["categories"]) == 46 and other["categories"][45] == {
        "id": 46,
        "name": "other",
        "supercategory": "sign",
    }
    assert [a["category_id"] for a in other["annotations"]] == [pl80, 46, 1]
    with pytest.raises(ValueError, match="'pl80'"):
        convert_tt100k_to_coco(ann, ["10"], other_class="pl80")

    # the CLI writes the files the built-in names expect
    root = tmp_path / "tt100k"
    (root / "data" / "train").mkdir(parents=True)
    (root / "data" / "test").mkdir(parents=True)
    (root / "data" / "annotations.json").write_text(json.dumps(ann))
    (root / "data" / "train" / "ids.txt").write_text("10\n11\n")
    (root / "data" / "test" / "ids.txt").write_text("12\n")
    spec = importlib.util.spec_from_file_location("prepare_tt100k", REPO / "datasets" / "prepare_tt100k.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--root", str(root)]) == 0
    out = root / "annotations" / "tt100k_train_45.json"
    register_tt100k(unique_name, str(out), str(root / "data"))
    dicts = DatasetCatalog.get(unique_name)
    assert len(dicts) == 2 and dicts[0]["file_name"] == str(root / "data" / "train" / "10.jpg")
    assert [a["category_id"] for a in dicts[0]["annotations"]] == [pl80 - 1, 0]
    meta = MetadataCatalog.get(unique_name)
    assert meta.evaluator_type == "tt100k" and meta.thing_classes == list(TT100K_45_CLASSES)
    written = json.loads((root / "annotations" / "tt100k_train_45_other.json").read_text())
    assert written == json.loads(json.dumps(other))
    assert not (root / "annotations" / "tt100k_test_45_other.json").exists()
    assert json.loads((root / "annotations" / "tt100k_test_45.json").read_text())["images"][0]["id"] == 12


def test_aquarium_labels(aquarium_root, caplog):
    meta = MetadataCatalog.get("aquarium_train")
    assert meta.thing_classes == ["fish", "jellyfish", "penguin", "puffin", "shark", "starfish", "stingray"]
    dicts = DatasetCatalog.get("aquarium_valid")
    assert len(dicts) == 127
    with caplog.at_level(logging.INFO, logger="net_detr2.data.datasets.yolo"):
        dicts = DatasetCatalog.get("aquarium_train")
    assert len(dicts) == 448
    # 3324 label lines; the one 1x1-px box is dropped and logged with its file and line
    assert sum(len(d["annotations"]) for d in dicts) == 3323
    assert "Dropped 1 boxes degenerate" in caplog.text and "IMG_8580_jpg" in caplog.text
    empty = [d for d in dicts if not d["annotations"]]
    assert [Path(d["file_name"]).stem for d in empty] == ["IMG_3133_jpeg_jpg.rf.f439b9d382fd153b96f0a88cdf169172"]
    by_name = {Path(d["file_name"]).name: d for d in dicts}
    d = by_name["IMG_2274_jpeg_jpg.rf.2f319e949748145fb22dcb52bb325a0c.jpg"]
    assert (d["height"], d["width"]) == (1024, 768)
    # first label line: "0 0.2734375 0.509765625 0.33984375 0.146484375" on a 768x1024 image
    a = d["annotations"][0]
    assert a["category_id"] == 0 and a["bbox_mode"] == BoxMode.XYXY_ABS
    assert a["bbox"] == pytest.approx([79.5, 447.0, 340.5, 597.0])
    # every label file line becomes one box, for a second image too
    d2 = dicts[1]
    label = Path(d2["file_name"]).parents[1] / "labels" / (Path(d2["file_name"]).stem + ".txt")
    lines = [ln.split() for ln in label.read_text().splitlines() if ln.strip()]
    assert len(d2["annotations"]) == len(lines)
    c, cx, cy, w, h = lines[-1]
    H, W = d2["height"], d2["width"]
    assert d2["annotations"][-1]["category_id"] == int(c)
    assert d2["annotations"][-1]["bbox"] == pytest.approx(
        [
            (float(cx) - float(w) / 2) * W,
            (float(cy) - float(h) / 2) * H,
            (float(cx) + float(w) / 2) * W,
            (float(cy) + float(h) / 2) * H,
        ]
    )


def _yolo_tree(root, labels: dict, names="names: [fish, shark]\nnc: 2\n", sizes=None):
    """``root/{data.yaml, train/images/*.jpg, train/labels/*.txt}``; ``labels`` maps stem -> text (None: no file)."""
    from PIL import Image

    (root / "train" / "images").mkdir(parents=True)
    (root / "train" / "labels").mkdir(parents=True)
    if names is not None:
        (root / "data.yaml").write_text(names)
    for stem, text in labels.items():
        w, h = (sizes or {}).get(stem, (200, 100))
        Image.new("RGB", (w, h), (40, 80, 120)).save(root / "train" / "images" / f"{stem}.jpg")
        if text is not None:
            (root / "train" / "labels" / f"{stem}.txt").write_text(text)


def test_yolo_loader_boxes_empty_files_and_dropped_boxes(tmp_path, unique_name, caplog):
    from net_detr2.data.datasets import register_yolo_dataset

    _yolo_tree(
        tmp_path,
        {
            "a": "1 0.5 0.5 0.2 0.4\n\n0 0.1 0.2 0.0 0.3\n0 0.95 0.5 0.2 0.2\n0 0.25 0.25 0.5 0.5\n",
            "b": "",  # empty label file: an image without objects
            "c": None,  # no label file: the same
            "d": "0 0.5 0.5 0.004 0.5\n0 0.5 0.5 1.0004 0.5\n",  # a 0.8-px-wide box; an overshoot within rounding
        },
    )
    register_yolo_dataset(unique_name, str(tmp_path), "train")
    assert MetadataCatalog.get(unique_name).thing_classes == ["fish", "shark"]
    with caplog.at_level(logging.INFO, logger="net_detr2.data.datasets.yolo"):
        dicts = DatasetCatalog.get(unique_name)
    assert [Path(d["file_name"]).stem for d in dicts] == ["a", "b", "c", "d"]
    assert [d["image_id"] for d in dicts] == [0, 1, 2, 3] and (dicts[0]["height"], dicts[0]["width"]) == (100, 200)
    a = dicts[0]["annotations"]
    assert [x["category_id"] for x in a] == [1, 0]
    assert a[0]["bbox"] == pytest.approx([80.0, 30.0, 120.0, 70.0]) and a[0]["bbox_mode"] == BoxMode.XYXY_ABS
    assert a[1]["bbox"] == pytest.approx([0.0, 0.0, 100.0, 50.0])
    assert dicts[1]["annotations"] == [] and dicts[2]["annotations"] == []
    assert [x["bbox"] for x in dicts[3]["annotations"]] == [pytest.approx([0.0, 25.0, 200.0, 75.0])]  # clipped
    assert "Loaded 4 images with 3 boxes" in caplog.text
    assert "Dropped 1 boxes outside the image" in caplog.text and "a.txt:4" in caplog.text
    assert "Dropped 2 boxes degenerate" in caplog.text and "a.txt:3" in caplog.text
    # the dicts pass the loaders' own checks, and COCO evaluation of them needs nothing else
    assert len(get_detection_dataset_dicts(unique_name, filter_empty=True)) == 2


def test_yolo_loader_errors_name_file_and_line(tmp_path):
    from net_detr2.data.datasets import load_yolo_instances, read_yolo_class_names

    cases = {
        "short": ("0 0.5 0.5 0.2\n", r"short\.txt:1: expected 5 fields"),
        "word": ("0 0.5 0.5 0.2 0.2\n0 0.5 x 0.2 0.2\n", r"word\.txt:2: not a number"),
        "frac": ("0.5 0.5 0.5 0.2 0.2\n", r"frac\.txt:1: class must be an integer"),
        "nan": ("0 nan 0.5 0.2 0.2\n", r"nan\.txt:1: .*finite"),
        "beyond": (
            "0 0.5 0.5 0.2 0.2\n\n2 0.5 0.5 0.2 0.2\n",
            r"beyond\.txt:3: class id 2 is not one of the 2 classes",
        ),
        "negative": ("-1 0.5 0.5 0.2 0.2\n", r"negative\.txt:1: class id -1"),
    }
    for stem, (text, message) in cases.items():
        root = tmp_path / stem
        _yolo_tree(root, {stem: text})
        with pytest.raises(ValueError, match=message):
            load_yolo_instances(str(root / "train" / "images"), str(root / "train" / "labels"), ["fish", "shark"])

    root = tmp_path / "corrupt"
    _yolo_tree(root, {"bad": "0 0.5 0.5 0.2 0.2\n"})
    (root / "train" / "images" / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(OSError, match=r"bad\.jpg"):
        load_yolo_instances(str(root / "train" / "images"), str(root / "train" / "labels"), ["fish"])
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_yolo_instances(str(tmp_path / "nowhere"), str(tmp_path), ["fish"])

    (tmp_path / "n.yaml").write_text("nc: 3\nnames: [a, b]\n")
    with pytest.raises(ValueError, match=r"n\.yaml: nc=3 but 2 names"):
        read_yolo_class_names(str(tmp_path / "n.yaml"))
    (tmp_path / "d.yaml").write_text("names: {1: shark, 0: fish}\n")
    assert read_yolo_class_names(str(tmp_path / "d.yaml")) == ["fish", "shark"]


def test_register_yolo_dataset_explicit_class_names(tmp_path, unique_name):
    from net_detr2.data.datasets import register_yolo_dataset

    _yolo_tree(tmp_path, {"a": "2 0.5 0.5 0.2 0.2\n"}, names=None)
    register_yolo_dataset(unique_name, str(tmp_path), "train", class_names=["x", "y", "z"])
    assert MetadataCatalog.get(unique_name).thing_classes == ["x", "y", "z"]
    assert DatasetCatalog.get(unique_name)[0]["annotations"][0]["category_id"] == 2

    other = unique_name + "_no_yaml"
    register_yolo_dataset(other, str(tmp_path), "train")
    try:
        with pytest.raises(FileNotFoundError, match=r"data\.yaml not found.*give class_names"):
            DatasetCatalog.get(other)
    finally:
        DatasetCatalog.remove(other)
        MetadataCatalog.remove(other)
