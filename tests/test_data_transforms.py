"""Each transform's effect on small hand-made images, its randomness and its argument checks."""

import math

import numpy as np
import pytest

from minicnn import ConfigError, InputError
from minicnn.data import transforms as T


def _image(c=3, h=5, w=6, seed=0):
    return np.random.default_rng(seed).random((c, h, w), dtype=np.float32)


def _rng(seed=0):
    return np.random.default_rng(seed)


def test_flips_exact():
    img = _image()
    np.testing.assert_array_equal(T.RandomHorizontalFlip(1.0)(img, _rng()), img[:, :, ::-1])
    np.testing.assert_array_equal(T.RandomVerticalFlip(1.0)(img, _rng()), img[:, ::-1, :])
    np.testing.assert_array_equal(T.RandomHorizontalFlip(0.0)(img, _rng()), img)
    out = T.RandomHorizontalFlip(1.0)(img, _rng())
    assert out.flags.c_contiguous and out.dtype == np.float32
    flip = T.RandomHorizontalFlip()
    flipped = sum(not np.array_equal(flip(img, _rng(s)), img) for s in range(200))
    assert 70 < flipped < 130                                   # p = 0.5


def test_crop_with_padding_exact():
    img = _image(2, 4, 5)
    t = T.RandomCrop((4, 5), padding=2, fill=-1)
    padded = np.pad(img, ((0, 0), (2, 2), (2, 2)), constant_values=-1)
    windows = set()
    for seed in range(60):
        out = t(img, _rng(seed))
        check = _rng(seed)                                      # documented: row, then column
        i, j = int(check.integers(0, 5)), int(check.integers(0, 5))
        np.testing.assert_array_equal(out, padded[:, i:i + 4, j:j + 5])
        windows.add((i, j))
    assert len(windows) > 15                                    # the offsets vary
    np.testing.assert_array_equal(T.RandomCrop((4, 5))(img, _rng()), img)


def test_crop_padding_forms_and_modes():
    img = _image(1, 3, 3)
    t = T.RandomCrop((5, 7), padding=(2, 1))                    # left/right 2, top/bottom 1
    np.testing.assert_array_equal(t(img, _rng()), np.pad(img, ((0, 0), (1, 1), (2, 2))))
    t = T.RandomCrop((4, 6), padding=(1, 0, 2, 1))              # left, top, right, bottom
    np.testing.assert_array_equal(t(img, _rng()), np.pad(img, ((0, 0), (0, 1), (1, 2))))
    for mode in ("edge", "reflect", "symmetric"):
        t = T.RandomCrop(5, padding=1, padding_mode=mode)
        expected = np.pad(img, ((0, 0), (1, 1), (1, 1)), mode=mode)
        np.testing.assert_array_equal(t(img, _rng()), expected)
    with pytest.raises(InputError, match=r"RandomCrop.*larger"):
        T.RandomCrop(6, padding=1)(img, _rng())


def test_translate():
    img = _image(1, 5, 5)
    t = T.RandomTranslate(2, 1, fill=0.5)
    shifts = set()
    for seed in range(40):
        out = t(img, _rng(seed))
        check = _rng(seed)
        dx, dy = int(check.integers(-2, 3)), int(check.integers(-1, 2))
        expected = np.full_like(img, 0.5)
        for y in range(5):
            for x in range(5):
                if 0 <= y - dy < 5 and 0 <= x - dx < 5:
                    expected[:, y, x] = img[:, y - dy, x - dx]
        np.testing.assert_array_equal(out, expected)
        shifts.add((dx, dy))
    assert len(shifts) == 15


@pytest.mark.parametrize("size", [5, 6])
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_rotation_by_90_is_rot90(size, interpolation):
    img = _image(2, size, size)
    out = T.RandomRotation((90, 90), interpolation=interpolation)(img, _rng())
    np.testing.assert_allclose(out, np.rot90(img, 1, axes=(1, 2)), rtol=0, atol=1e-6)
    out = T.RandomRotation((-90, -90), interpolation=interpolation)(img, _rng())
    np.testing.assert_allclose(out[:, 1:-1, 1:-1], np.rot90(img, -1, axes=(1, 2))[:, 1:-1, 1:-1],
                               rtol=0, atol=1e-6)
    np.testing.assert_array_equal(T.RandomRotation(0)(img, _rng()), img)


def _rotate_reference(img, degrees, fill):
    """Plain-loop bilinear rotation, counter-clockwise on screen (y down), about the centre."""
    c, h, w = img.shape
    cy, cx = (h - 1) / 2, (w - 1) / 2
    t = math.radians(degrees)
    out = np.zeros(img.shape)
    for y in range(h):
        for x in range(w):
            # the output pixel shows the input point rotated back by -t
            sx = math.cos(t) * (x - cx) - math.sin(t) * (y - cy) + cx
            sy = math.sin(t) * (x - cx) + math.cos(t) * (y - cy) + cy
            x0, y0 = math.floor(sx), math.floor(sy)
            for ch in range(c):
                total = 0.0
                for yy, wy in ((y0, 1 - (sy - y0)), (y0 + 1, sy - y0)):
                    for xx, wx in ((x0, 1 - (sx - x0)), (x0 + 1, sx - x0)):
                        inside = 0 <= xx < w and 0 <= yy < h
                        total += wx * wy * (img[ch, yy, xx] if inside else fill)
                out[ch, y, x] = total
    return out


def test_rotation_matches_loop_reference():
    img = _image(2, 7, 6)
    t = T.RandomRotation(40, fill=0.25)
    for seed in range(3):
        angle = _rng(seed).uniform(-40, 40)
        np.testing.assert_allclose(t(img, _rng(seed)), _rotate_reference(img, angle, 0.25),
                                   rtol=0, atol=1e-5)
    # counter-clockwise: a pixel right of the centre goes up by a quarter turn
    dot = np.zeros((1, 5, 5), np.float32)
    dot[0, 2, 4] = 1
    assert T.RandomRotation((90, 90))(dot, _rng())[0, 0, 2] == 1


def test_affine_translate_and_scale():
    img = _image(1, 6, 6)
    t = T.RandomAffine(translate=(0.34, 0.0))                  # up to 2 pixels in x
    for seed in range(10):
        out = t(img, _rng(seed))
        check = _rng(seed)
        check.uniform(0, 0)                                     # the (zero) angle
        dx = round(check.uniform(-0.34 * 6, 0.34 * 6))
        expected = np.zeros_like(img)
        if dx >= 0:
            expected[:, :, dx:] = img[:, :, :6 - dx]
        else:
            expected[:, :, :dx] = img[:, :, -dx:]
        np.testing.assert_allclose(out, expected, atol=1e-6)
    zoom = T.RandomAffine(scale=(2.0, 2.0))(_image(1, 5, 5), _rng())
    assert zoom[0, 2, 2] == _image(1, 5, 5)[0, 2, 2]            # the centre stays put
    np.testing.assert_allclose(zoom[0, 2, 4], _image(1, 5, 5)[0, 2, 3], atol=1e-6)


def test_grayscale_weights():
    img = np.zeros((3, 2, 2), np.float32)
    img[0, 0, 0], img[1, 0, 1], img[2, 1, 0] = 1, 1, 1
    img[:, 1, 1] = 0.5
    out = T.Grayscale()(img, None)
    assert out.shape == (1, 2, 2)
    np.testing.assert_allclose(out[0], [[0.299, 0.587], [0.114, 0.5]], rtol=0, atol=1e-7)
    three = T.Grayscale(3)(img, None)
    assert three.shape == (3, 2, 2) and (three == out).all()
    gray = _image(1)
    np.testing.assert_array_equal(T.Grayscale(3)(gray, None), np.repeat(gray, 3, axis=0))
    with pytest.raises(InputError, match=r"Grayscale.*channels"):
        T.Grayscale()(np.zeros((2, 3, 3), np.float32), None)


def test_brightness_factor_range():
    img = np.full((3, 2, 2), 0.4, np.float32)
    t = T.ColorJitter(brightness=0.5)
    factors = [float(t(img, _rng(s))[0, 0, 0]) / 0.4 for s in range(300)]
    assert 0.5 - 1e-6 <= min(factors) < 0.55 and 1.45 < max(factors) <= 1.5 + 1e-6
    assert abs(np.mean(factors) - 1.0) < 0.05                   # uniform on [0.5, 1.5]
    bright = T.ColorJitter(brightness=(3.0, 3.0))(img, _rng())
    np.testing.assert_array_equal(bright, np.ones_like(img))    # clipped to 1


def test_contrast_and_saturation_definitions():
    img = _image(3, 4, 4, seed=1) * 0.5 + 0.25
    gray = 0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2]
    out = T.ColorJitter(contrast=(0.5, 0.5))(img, _rng())
    np.testing.assert_allclose(out, 0.5 * img + 0.5 * gray.mean(), atol=1e-6)
    out = T.ColorJitter(saturation=(0.0, 0.0))(img, _rng())
    np.testing.assert_allclose(out, np.broadcast_to(gray, img.shape), atol=1e-6)
    out = T.ColorJitter(saturation=(2.0, 2.0))(img, _rng())
    np.testing.assert_allclose(out, np.clip(2 * img - gray, 0, 1), atol=1e-6)
    one = _image(1)
    np.testing.assert_array_equal(T.ColorJitter(saturation=0.9)(one, _rng()), one)


def test_color_jitter_random_order():
    img = _image(3, 3, 3)
    t = T.ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4)
    for seed in range(5):
        order, (b, c, s) = t.factors(_rng(seed))
        x = img.astype(np.float64)
        for k in order:
            if k == 0:
                x = np.clip(b * x, 0, 1)
            elif k == 1:
                m = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]).mean()
                x = np.clip(c * x + (1 - c) * m, 0, 1)
            else:
                g = 0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]
                x = np.clip(s * x + (1 - s) * g, 0, 1)
        np.testing.assert_allclose(t(img, _rng(seed)), x, atol=2e-6)
    orders = {t.factors(_rng(s))[0] for s in range(100)}
    assert len(orders) == 6


def test_normalize_exact():
    img = _image()
    mean, std = [0.1, 0.2, 0.3], [0.5, 0.25, 2.0]
    out = T.Normalize(mean, std)(img, None)
    expected = ((img - np.float32(mean)[:, None, None]) / np.float32(std)[:, None, None])
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_allclose(out[1], (img[1].astype(np.float64) - 0.2) / 0.25, rtol=1e-6)
    np.testing.assert_array_equal(T.Normalize(0.5, 0.5)(img, None), (img - 0.5) / 0.5)
    with pytest.raises(InputError, match="Normalize"):
        T.Normalize([0.1, 0.2], [1, 1])(img, None)


def test_resize_rules():
    img = np.full((2, 4, 8), 0.3, np.float32)
    out = T.Resize(2)(img, None)                                 # shorter side -> 2
    assert out.shape == (2, 2, 4)
    np.testing.assert_allclose(out, 0.3, atol=1e-6)
    assert T.Resize((3, 5))(img, None).shape == (2, 3, 5)
    assert T.Resize(6)(np.zeros((1, 9, 3), np.float32), None).shape == (1, 18, 6)


def test_compose_applies_in_order_with_one_generator():
    img = _image()
    t = T.Compose([T.RandomHorizontalFlip(1.0), T.Normalize(0.5, 2.0), T.Grayscale()])
    expected = T.Grayscale()((img[:, :, ::-1] - 0.5) / 2.0, None)
    np.testing.assert_allclose(t(img, _rng()), expected, atol=1e-7)
    assert "RandomHorizontalFlip" in repr(t)


def test_input_untouched_and_checked():
    img = _image()
    before = img.copy()
    for t in (T.RandomHorizontalFlip(1.0), T.RandomCrop(5, padding=1), T.RandomRotation(30),
              T.ColorJitter(0.5, 0.5, 0.5), T.Normalize(0.5, 0.5), T.RandomTranslate(1, 1),
              T.Resize(3), T.RandomAffine(10, (0.1, 0.1), (0.9, 1.1))):
        out = t(img, _rng())
        assert out.dtype == np.float32 and out.flags.c_contiguous
        np.testing.assert_array_equal(img, before)
        with pytest.raises(InputError, match=type(t).__name__):
            t(np.zeros((4, 4), np.float32), _rng())


@pytest.mark.parametrize("make,match", [
    (lambda: T.RandomHorizontalFlip(1.5), r"RandomHorizontalFlip: p"),
    (lambda: T.RandomVerticalFlip("a"), r"RandomVerticalFlip: p"),
    (lambda: T.RandomCrop(0), r"RandomCrop: size"),
    (lambda: T.RandomCrop(3, padding=-1), r"RandomCrop: padding"),
    (lambda: T.RandomCrop(3, padding=(1, 2, 3)), r"RandomCrop: padding"),
    (lambda: T.RandomCrop(3, padding_mode="wrap"), r"RandomCrop: padding_mode"),
    (lambda: T.RandomTranslate(-1, 0), r"RandomTranslate: max_dx"),
    (lambda: T.RandomRotation(-5), r"RandomRotation: degrees"),
    (lambda: T.RandomRotation((10, 5)), r"RandomRotation: degrees"),
    (lambda: T.RandomRotation(5, interpolation="cubic"), r"RandomRotation: interpolation"),
    (lambda: T.RandomAffine(0, translate=(2, 0)), r"RandomAffine: translate"),
    (lambda: T.RandomAffine(0, scale=1.5), r"RandomAffine: scale"),
    (lambda: T.RandomAffine(0, scale=(0, 1)), r"RandomAffine: scale"),
    (lambda: T.Grayscale(2), r"Grayscale: num_output_channels"),
    (lambda: T.ColorJitter(brightness=-0.1), r"ColorJitter: brightness"),
    (lambda: T.ColorJitter(contrast=(1.5, 0.5)), r"ColorJitter: contrast"),
    (lambda: T.Normalize([0, 0], [1, 0]), r"Normalize: std"),
    (lambda: T.Normalize([0, 0, 0], [1, 1]), r"Normalize: mean"),
    (lambda: T.Resize((2, -1)), r"Resize: size"),
    (lambda: T.Compose([3]), r"Compose"),
    (lambda: T.Compose(None), r"Compose: transforms must be a list"),
    # beyond what numpy and float32 can hold: refused when built, not when applied
    (lambda: T.RandomHorizontalFlip(p=10**400), r"RandomHorizontalFlip: p .*float32"),
    (lambda: T.RandomRotation(1e308), r"RandomRotation: degrees"),
    (lambda: T.RandomTranslate(2, 2, fill=1e39), r"RandomTranslate: fill"),
    (lambda: T.ColorJitter(contrast=1e39), r"ColorJitter: contrast"),
    (lambda: T.RandomTranslate(2**63, 0), r"RandomTranslate: max_dx must be an int in"),
    (lambda: T.RandomCrop(2, padding=10**20), r"RandomCrop: padding"),
    (lambda: T.RandomAffine(scale=(1e-320, 1e-320)), r"RandomAffine: scale must be at least"),
    (lambda: T.Resize(10**5), r"Resize: size .* pixels"),
    (lambda: T.RandomCrop((10**5, 10**5)), r"RandomCrop: size .* pixels"),
    (lambda: T.Normalize(0, 1e-40), r"Normalize: std must be at least"),
    (lambda: T.Normalize("a", 1), r"Normalize: mean"),
    (lambda: T.Normalize([], 1), r"Normalize: mean .*non-empty"),
    (lambda: T.Normalize(True, 1), r"Normalize: mean"),
    # an array where a name or a count goes: no "truth value is ambiguous"
    (lambda: T.RandomRotation(30, interpolation=np.array([1, 2])), r"interpolation"),
    (lambda: T.Grayscale(np.array([1, 3])), r"Grayscale: num_output_channels"),
    (lambda: T.RandomCrop(3, padding_mode=np.array(["edge"])), r"RandomCrop: padding_mode"),
])
def test_argument_validation(make, match):
    with pytest.raises(ConfigError, match=match):
        make()


@pytest.mark.parametrize("image,match", [
    (np.zeros((3, 0, 5), np.float32), r"non-empty CHW image, got shape \(3, 0, 5\)"),
    (np.zeros((0, 4, 4), np.float32), r"non-empty"),
    (np.full((3, 2, 2), "a"), r"image of numbers.*<U1"),
    (np.full((3, 2, 2), None, object), r"image of numbers.*object"),
    (np.full((3, 2, 2), 1j), r"image of numbers.*complex"),
    (np.full((3, 2, 2), 1e300), r"beyond float32's range"),
])
def test_every_transform_refuses_images_it_cannot_take(image, match):
    for t in (T.RandomHorizontalFlip(), T.RandomVerticalFlip(), T.RandomCrop(1, padding=1),
              T.RandomCrop(1, padding=2, padding_mode="reflect"), T.RandomTranslate(1, 1),
              T.RandomRotation(30), T.RandomAffine(10), T.Grayscale(), T.ColorJitter(0.5),
              T.Normalize(0, 1), T.Resize(4), T.Resize((4, 4))):
        with pytest.raises(InputError, match=type(t).__name__ + ": .*" + match):
            t(image, _rng())


def test_integer_and_bool_images_are_taken_as_float32():
    img = np.arange(12, dtype=np.int64).reshape(1, 3, 4)
    out = T.RandomHorizontalFlip(1.0)(img, _rng())
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, img[:, :, ::-1].astype(np.float32))
    assert T.Grayscale()(np.ones((1, 2, 2), bool)).sum() == 4


def test_padding_that_would_build_a_huge_image_is_refused_before_allocating():
    crop = T.RandomCrop(2, padding=10**6, padding_mode="edge")
    with pytest.raises(InputError, match=r"RandomCrop: padding .* 2000005x2000006 image"):
        crop(_image(c=1, h=5, w=6), _rng())
    constant = T.RandomCrop(2, padding=10**6)         # constant fill: only the crop is built
    assert constant(_image(), _rng()).shape == (3, 2, 2)


def test_random_transforms_without_a_generator_draw_fresh_randomness():
    img = _image()
    flip = T.RandomHorizontalFlip()
    outcomes = {bool(np.array_equal(flip(img), img)) for _ in range(60)}
    assert outcomes == {True, False}              # p = 0.5: both happen in 60 tries
    pipeline = T.Compose([T.RandomCrop(3, padding=1), T.ColorJitter(0.3), T.RandomAffine(5)])
    assert pipeline(img).shape == (3, 3, 3)
    with pytest.raises(InputError, match=r"RandomRotation: rng must be a numpy.random.Generator"):
        T.RandomRotation(5)(img, 3)


def test_lambda_checks_what_its_function_returns():
    with pytest.raises(InputError, match=r"Lambda: <lambda> must return an array of numbers"):
        T.Lambda(lambda im: None)(_image())
    with pytest.raises(InputError, match=r"Lambda: drop must return .*<U"):
        def drop(im):
            return np.array(["x"])
        T.Lambda(drop)(_image())
    out = T.Lambda(lambda im: im[:1] * 2)(_image())
    assert out.shape == (1, 5, 6) and out.dtype == np.float32
