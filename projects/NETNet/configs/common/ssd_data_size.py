"""Change the fixed input size of an SSD data config (``configs/common/data/*_ssd.py``) from 300 to e.g. 512."""


def set_input_size(dataloader, size):
    """Set every fixed `Resize` of the train and test mappers to ``(size, size)`` (in place)."""
    found = 0
    for split in ("train", "test"):
        for aug in dataloader[split].mapper.augmentations:
            if "shape" in aug:  # T.Resize(shape=(h, w)) -- the only augmentation with a fixed shape
                aug.shape = (size, size)
                found += 1
    if found != 2:
        raise ValueError(
            f"set_input_size: expected one Resize(shape=...) in each of train and test mappers, found {found}"
        )
    return dataloader
