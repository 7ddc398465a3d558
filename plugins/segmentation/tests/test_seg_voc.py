"""The Pascal VOC reader on a tiny VOC-layout tree built in a temporary folder."""

import numpy as np
import pytest
from minicnn import DataFormatError, DatasetNotFoundError
from PIL import Image

from minicnn_segmentation import VOC_PALETTE, VOCSegmentation, load_mask, make_loader


def _palette_png(mask, path):
    image = Image.frombytes("P", mask.shape[::-1], mask.astype(np.uint8).tobytes())
    image.putpalette(VOC_PALETTE.reshape(-1).tolist())
    image.save(path)


def make_voc(root, ids=("2007_000001", "2007_000002", "2007_000003"), size=(12, 16), seed=0):
    """A VOC2012 tree: JPEGs, palette PNG masks with labels (incl. 255), split files."""
    rng = np.random.default_rng(seed)
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    masks = {}
    h, w = size
    for k, i in enumerate(ids):
        colour = rng.integers(0, 256, 3)
        pixels = np.broadcast_to(colour, (h, w, 3)).astype(np.uint8)
        Image.fromarray(pixels).save(root / "JPEGImages" / f"{i}.jpg", quality=95)
        mask = np.zeros((h, w), np.int64)
        mask[2:8, 3:10] = 15 if k % 2 == 0 else 7          # person / car
        mask[2:8, 3] = 255                                  # a void border
        _palette_png(mask, root / "SegmentationClass" / f"{i}.png")
        masks[i] = (mask, colour)
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text("\n".join(ids[:2]) + "\n")
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text(ids[2] + "\n")
    return masks


def test_reads_palette_indices_as_labels(tmp_path):
    masks = make_voc(tmp_path)
    ds = VOCSegmentation(tmp_path, "train")
    assert len(ds) == 2 and ds.ids == ["2007_000001", "2007_000002"]
    assert len(ds.classes) == 21 and ds.classes[15] == "person"
    image, mask = ds[0]
    truth, colour = masks["2007_000001"]
    assert image.shape == (3, 12, 16) and image.dtype == np.float32
    assert mask.dtype == np.int64
    np.testing.assert_array_equal(mask, truth)                # indices, not palette colours
    np.testing.assert_allclose(image.mean(axis=(1, 2)), colour / 255.0, atol=0.03)   # JPEG
    assert set(np.unique(VOCSegmentation(tmp_path, "val")[0][1])) == {0, 15, 255}


def test_devkit_parent_folder_and_resizing(tmp_path):
    make_voc(tmp_path / "VOCdevkit" / "VOC2012")
    ds = VOCSegmentation(tmp_path, "train", size=(6, 8))
    image, mask = ds[1]
    assert image.shape == (3, 6, 8) and mask.shape == (6, 8)
    assert set(np.unique(mask)) <= {0, 7, 255}                # nearest: no blended labels
    x, y = next(iter(make_loader(ds, batch_size=2)))
    assert x.shape == (2, 3, 6, 8) and y.shape == (2, 6, 8) and y.dtype == np.int64


def test_missing_files_are_named(tmp_path):
    make_voc(tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"test\.txt"):
        VOCSegmentation(tmp_path, "test")
    (tmp_path / "SegmentationClass" / "2007_000002.png").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"SegmentationClass[/\\]2007_000002\.png"):
        VOCSegmentation(tmp_path, "train")
    with pytest.raises(DatasetNotFoundError, match="not a directory"):
        VOCSegmentation(tmp_path / "nowhere")


def test_corrupt_mask_is_a_data_format_error(tmp_path):
    make_voc(tmp_path)
    path = tmp_path / "SegmentationClass" / "2007_000001.png"
    path.write_bytes(path.read_bytes()[:40])                  # truncated
    ds = VOCSegmentation(tmp_path, "train")
    with pytest.raises(DataFormatError, match=r"2007_000001\.png"):
        ds[0]
    path.write_bytes(b"not a png at all")
    with pytest.raises(DataFormatError, match=r"2007_000001\.png"):
        ds[0]


def test_corrupt_image_is_a_data_format_error(tmp_path):
    make_voc(tmp_path)
    path = tmp_path / "JPEGImages" / "2007_000002.jpg"
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(DataFormatError, match=r"2007_000002\.jpg"):
        VOCSegmentation(tmp_path, "train")[1]


def test_rgb_masks_and_bad_labels_are_refused(tmp_path):
    make_voc(tmp_path)
    path = tmp_path / "SegmentationClass" / "2007_000001.png"
    with Image.open(path) as image:
        image.convert("RGB").save(path)                       # colours, not labels
    with pytest.raises(DataFormatError, match=r"2007_000001\.png.*mode 'RGB'"):
        VOCSegmentation(tmp_path, "train")[0]
    bad = np.zeros((12, 16), np.int64)
    bad[0, 0] = 30                                            # not a VOC class, not 255
    _palette_png(bad, path)
    with pytest.raises(DataFormatError, match=r"2007_000001\.png.*\[30\]"):
        VOCSegmentation(tmp_path, "train")[0]
    assert load_mask(path)[0, 0] == 30                        # fine without a class count


def test_mask_and_image_sizes_must_agree(tmp_path):
    make_voc(tmp_path)
    _palette_png(np.zeros((5, 5), np.int64), tmp_path / "SegmentationClass" / "2007_000002.png")
    with pytest.raises(DataFormatError, match=r"2007_000002\.png: mask is 5x5 .* 16x12"):
        VOCSegmentation(tmp_path, "train")[1]


def test_bad_split_file(tmp_path):
    make_voc(tmp_path)
    (tmp_path / "ImageSets" / "Segmentation" / "train.txt").write_text("../../etc/passwd\n")
    with pytest.raises(DataFormatError, match="not a plain image id"):
        VOCSegmentation(tmp_path, "train")
    (tmp_path / "ImageSets" / "Segmentation" / "train.txt").write_text("\n")
    with pytest.raises(DataFormatError, match="no image ids"):
        VOCSegmentation(tmp_path, "train")
