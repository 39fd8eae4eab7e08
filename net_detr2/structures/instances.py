"""`Instances`: per-image fields of equal length (boxes, scores, classes, ...) with the image size."""

from __future__ import annotations

import itertools
from typing import Any

import torch


class Instances:
    """A set of N instances in one image of size ``image_size = (height, width)``.

    Every field (a tensor, `Boxes`, list or anything with ``__len__`` and ``__getitem__``) has length N.
    Fields are attributes: ``inst.pred_boxes = Boxes(...)``; indexing with an int, slice, bool mask
    or index tensor selects instances in every field at once.
    """

    def __init__(self, image_size: tuple[int, int], **fields: Any):
        self._image_size = (int(image_size[0]), int(image_size[1]))
        self._fields: dict[str, Any] = {}
        for name, value in fields.items():
            self.set(name, value)

    @property
    def image_size(self) -> tuple[int, int]:
        return self._image_size

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            super().__setattr__(name, value)
        else:
            self.set(name, value)

    def __getattr__(self, name: str) -> Any:
        if name == "_fields" or name not in self._fields:
            known = ", ".join(self.__dict__.get("_fields", {})) or "none"
            raise AttributeError(f"Instances has no field '{name}' (fields: {known})")
        return self._fields[name]

    def set(self, name: str, value: Any) -> None:
        n = len(value)
        if self._fields and n != len(self):
            raise ValueError(f"Instances: field '{name}' has length {n}, but the other fields have length {len(self)}")
        self._fields[name] = value

    def has(self, name: str) -> bool:
        return name in self._fields

    def remove(self, name: str) -> None:
        if name not in self._fields:
            raise KeyError(f"Instances.remove: no field '{name}'")
        del self._fields[name]

    def get(self, name: str) -> Any:
        return self._fields[name]

    def get_fields(self) -> dict[str, Any]:
        return self._fields

    def to(self, *args, **kwargs) -> Instances:
        out = Instances(self._image_size)
        for k, v in self._fields.items():
            if hasattr(v, "to"):
                v = v.to(*args, **kwargs)
            out.set(k, v)
        return out

    def __getitem__(self, item) -> Instances:
        if isinstance(item, int):
            if item >= len(self) or item < -len(self):
                raise IndexError(f"Instances index {item} out of range for {len(self)} instances")
            item = slice(item, None, len(self)) if item == -1 else slice(item, item + 1)
        out = Instances(self._image_size)
        for k, v in self._fields.items():
            if isinstance(v, list) and isinstance(item, torch.Tensor):
                idx = item.nonzero().flatten() if item.dtype == torch.bool else item
                v = [v[i] for i in idx.tolist()]
            else:
                v = v[item]
            out.set(k, v)
        return out

    def __len__(self) -> int:
        for v in self._fields.values():
            return v.__len__()
        raise NotImplementedError("Instances without any field has no length")

    def __iter__(self):
        raise NotImplementedError("Instances cannot be iterated; index it instead")

    @staticmethod
    def cat(instance_lists: list[Instances]) -> Instances:
        """Concatenate instances of the same image (same image_size and fields)."""
        if len(instance_lists) == 0:
            raise ValueError("Instances.cat: empty list")
        if len(instance_lists) == 1:
            return instance_lists[0]
        image_size = instance_lists[0].image_size
        for i in instance_lists[1:]:
            if i.image_size != image_size:
                raise ValueError(f"Instances.cat: image sizes differ ({i.image_size} vs {image_size})")
        out = Instances(image_size)
        for k in instance_lists[0]._fields:
            values = [i.get(k) for i in instance_lists]
            v0 = values[0]
            if isinstance(v0, torch.Tensor):
                values = torch.cat(values, dim=0)
            elif isinstance(v0, list):
                values = list(itertools.chain(*values))
            elif hasattr(type(v0), "cat"):
                values = type(v0).cat(values)
            else:
                raise ValueError(f"Instances.cat: field '{k}' of type {type(v0)} cannot be concatenated")
            out.set(k, values)
        return out

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}: {v}" for k, v in self._fields.items())
        return (
            f"Instances(num_instances={len(self) if self._fields else 0}, image_height={self._image_size[0]}, "
            f"image_width={self._image_size[1]}, fields=[{fields}])"
        )
