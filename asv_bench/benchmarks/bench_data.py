"""Data pipeline: Shapes generation rate and DataLoader throughput (images/s)."""

from minicnn.data import DataLoader, Shapes
from minicnn.data import transforms as T
from minicnn.data.generated import generate_shapes

from ._util import best_seconds


class ShapesGeneration:
    params = ([(10000, 28, 1), (2000, 32, 3)],)
    param_names = ["n_size_channels"]

    def setup(self, shape):
        generate_shapes(16, size=shape[1], channels=shape[2])   # warm the imports

    def time_generate(self, shape):
        n, size, channels = shape
        generate_shapes(n, size=size, channels=channels, seed=1)   # bypasses Shapes' cache

    def track_images_per_s(self, shape):
        n, size, channels = shape
        return n / best_seconds(lambda: generate_shapes(n, size=size, channels=channels, seed=1),
                                repeat=2)

    track_images_per_s.unit = "images/s"


def _augmentation(kind):
    if kind == "none":
        return None
    if kind == "flip_crop":
        return T.Compose([T.RandomCrop(28, padding=2), T.RandomHorizontalFlip()])
    return T.Compose([T.RandomCrop(28, padding=2), T.RandomRotation(10), T.ColorJitter(0.3, 0.3),
                      T.Normalize(0.2, 0.3)])


class LoaderThroughput:
    params = (["none", "flip_crop", "full"], [0, 2])
    param_names = ["augmentation", "num_workers"]

    def setup(self, augmentation, num_workers):
        self.dataset = Shapes(4096, seed=0)
        self.loader = DataLoader(self.dataset, batch_size=128, shuffle=True, seed=0,
                                 transform=_augmentation(augmentation), num_workers=num_workers)
        self._epoch()                     # compiles the warp kernel, starts nothing left over

    def _epoch(self):
        for _ in self.loader:
            pass

    def time_epoch(self, augmentation, num_workers):
        self._epoch()

    def track_images_per_s(self, augmentation, num_workers):
        return len(self.dataset) / best_seconds(self._epoch, repeat=3)

    track_images_per_s.unit = "images/s"
