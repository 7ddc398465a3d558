"""Line charts (training curves): ticks that cover the data, and awkward series drawn sensibly.

Cases found by fuzzing the drawing functions: a tick loop that never ended when the values differed
only in their last bits (a training curve hung the fit loop), axes that stopped short of the data,
and series with NaN, None, inf or JSON-style pairs."""

import math
import signal
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from minicnn.callbacks import TrainingCurve
from minicnn.plot import _nice_ticks, line_chart


@pytest.fixture
def deadline():
    """Fail instead of hanging: a tick loop that never ends is one of the defects looked for."""
    def expired(signum, frame):
        raise TimeoutError("drawing took over 10 s")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_ticks_cover_the_data_and_stay_few():
    rng = np.random.default_rng(0)
    for _ in range(5000):
        lo = float(rng.uniform(-100, 100))
        hi = lo + 10 ** float(rng.uniform(-6, 4))
        ticks = _nice_ticks(lo, hi)
        assert ticks[0] <= lo and ticks[-1] >= hi and 2 <= len(ticks) <= 12, (lo, hi, ticks)
    assert _nice_ticks(1.5, 2.3) == [1.4, 1.6, 1.8, 2.0, 2.2, 2.4]   # stopped at 2.2 before
    assert _nice_ticks(1, 30, integer=True) == [0, 10, 20, 30]


@pytest.mark.parametrize("lo, hi", [(0.1 + 0.2, 0.3), (1e6, 1e6 + 1e-10), (0.0, 5e-324),
                                    (-1e300, 1e300), (2.0, 2.0), (0.0, 0.0)])
def test_ticks_of_degenerate_ranges(lo, hi, deadline):
    ticks = _nice_ticks(lo, hi)
    assert ticks[0] <= lo and ticks[-1] >= hi and len(ticks) <= 12
    assert all(math.isfinite(t) for t in ticks)


def _blue(image):
    a = np.asarray(image)
    return (a[:, :, 0] == 31) & (a[:, :, 1] == 119) & (a[:, :, 2] == 180)


@pytest.mark.parametrize("series", [
    {"loss": [0.1 + 0.2, 0.3]},                                  # hung
    {"loss": [(math.nan, 1.0), (2, 2.0), (3, 1.5)]},             # NaN x filled the panel
    {"loss": [1.0, None, 0.5, math.inf, 0.2]},                   # JSONLogger writes NaN as null
    {"loss": [[1, 2.0], [2, 1.0]]},                              # pairs as JSON gives them
    {"loss": [-1e308, 1e308]},
    {3: [1, 2]},
])
def test_awkward_series_draw(tmp_path, series, deadline):
    image = line_chart(series, tmp_path / "c.png", title="two\nlines")
    assert Image.open(tmp_path / "c.png").size == image.size
    assert _blue(image).sum() < 0.05 * image.size[0] * image.size[1]


def test_a_value_that_is_no_number_is_named():
    with pytest.raises(TypeError, match=r"series 'loss' holds 'abc'"):
        line_chart({"loss": [1.0, "abc"]}, None)


def test_a_missing_value_breaks_the_line_and_the_axis_keeps_its_x(tmp_path):
    broken = np.asarray(line_chart({"loss": [1.0, 2.0, math.nan, 2.0, 1.0]}, None))
    joined = np.asarray(line_chart({"loss": [1.0, 2.0, 2.0, 2.0, 1.0]}, None))
    assert _blue(broken).sum() < _blue(joined).sum()          # no segment across the gap
    short = np.asarray(line_chart({"loss": [1.0, 0.5, math.nan, math.nan]}, None))
    two = np.asarray(line_chart({"loss": [1.0, 0.5]}, None))
    assert not np.array_equal(short, two)                      # x runs to 4: the run stopped


def test_training_curve_keeps_a_validation_series_that_starts_late(tmp_path):
    history = [{"loss": 1.0, "top1": 0.5}, {"loss": 0.8, "top1": 0.6},
               {"loss": 0.6, "top1": 0.7, "val_loss": 0.7, "val_top1": 0.65}]
    trainer = SimpleNamespace(history=history)
    with_val = tmp_path / "with.png"
    TrainingCurve(with_val).on_epoch_end(trainer, 3, history[-1])
    trainer.history = [{k: v for k, v in row.items() if not k.startswith("val")}
                       for row in history]
    TrainingCurve(tmp_path / "without.png").on_epoch_end(trainer, 3, trainer.history[-1])
    a = np.asarray(Image.open(with_val))
    b = np.asarray(Image.open(tmp_path / "without.png"))
    orange = (a[:, :, 0] == 255) & (a[:, :, 1] == 127) & (a[:, :, 2] == 14)   # second series
    assert orange.sum() > 0 and not np.array_equal(a, b)
