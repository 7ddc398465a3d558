"""The CUDA backend on a real GPU: LeNet-5 training steps, convolutions (each direction, the
kernel minicnn chooses against the direct one, and PyTorch/cuDNN with TF32 off beside them), the
transposed convolution, batch norm, padding and ReLU, with inputs already on the device, and the
host cost of one kernel launch. Every setup raises
NotImplementedError (asv: skipped) without a GPU, and on numba's simulator, which is far too slow
to time (``scripts/gpu_check.py`` prints the same convolution table in one run)."""

import numpy as np

from minicnn import fusion, nn, optim, zoo

from ._util import best_seconds, cuda_device_or_skip, data, rate

# (N, C, H, W, O, kernel, stride, padding): ResNet-20 (CIFAR) and ResNet-18 (ImageNet) layers
CONV_SHAPES = [(128, 32, 16, 16, 32, 3, 1, 1), (32, 64, 56, 56, 64, 3, 1, 1),
               (32, 64, 56, 56, 128, 3, 2, 1), (32, 256, 14, 14, 256, 3, 1, 1),
               # the direct kernels' cases: LeNet's first layer (a few weights, long sums: the
               # chunked weight gradient) and ResNet-18's stride-2 7x7 stem (direct input grad)
               (1024, 1, 28, 28, 6, 5, 1, 2), (32, 3, 224, 224, 64, 7, 2, 3),
               # VGG-19's conv4_2 on one image (style transfer): few blocks, long sums, so the
               # tiled forward and input gradient split their reduction (split_sum_rows)
               (1, 512, 32, 32, 512, 3, 1, 1)]


class LeNet5Step:
    """A LeNet-5 training step, with the activations fused into their producers' kernels (the
    default) and without (``minicnn.fusion``): the difference is what fusion saves."""
    params = ([64, 256], ["fused", "unfused"])
    param_names = ["batch", "fusion"]

    def setup(self, batch, fused):
        self.dev = cuda_device_or_skip()
        self.previous = fusion.set_enabled(fused == "fused")
        self.model = zoo.lenet5().to("cuda")
        self.loss = nn.CrossEntropyLoss()
        self.opt = optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.x = self.dev.asarray(data((batch, 1, 28, 28)))
        self.y = self.dev.asarray(np.arange(batch) % 10)
        self.time_train_step(batch, fused)    # compile and allocate outside the timing

    def teardown(self, batch, fused):
        fusion.set_enabled(self.previous)

    def time_train_step(self, batch, fused):
        self.loss(self.model(self.x), self.y)
        self.model.backward(self.loss.backward(), input_grad=False)
        self.opt.step()
        self.dev.synchronize()

    def track_images_per_s(self, batch, fused):
        return rate(lambda: self.time_train_step(batch, fused), batch)

    track_images_per_s.unit = "images/s"


class Conv3x3:
    params = ([(32, 64, 56, 56)],)
    param_names = ["shape"]

    def setup(self, shape):
        self.dev = cuda_device_or_skip()
        n, c, h, w = shape
        self.layer = nn.Conv2d(c, c, 3, padding=1).to("cuda")
        self.x = self.dev.asarray(data(shape))
        self.gy = self.dev.asarray(data(shape, seed=1))
        self.time_forward_backward(shape)

    def time_forward(self, shape):
        self.layer(self.x)
        self.dev.synchronize()

    def time_forward_backward(self, shape):
        self.layer(self.x)
        self.layer.backward(self.gy)
        self.dev.synchronize()

    def track_forward_gflops(self, shape):
        n, c, h, w = shape
        return rate(lambda: self.time_forward(shape), 2 * n * c * c * 9 * h * w) / 1e9

    track_forward_gflops.unit = "GFLOP/s"


class BatchNormDevice:
    """Batch norm in training mode: block-reduced statistics and gradient sums. ResNet-20's first
    stage (few channels, long runs per channel) and a ResNet-18 stage."""
    params = ([(256, 16, 32, 32), (32, 64, 56, 56)],)
    param_names = ["shape"]

    def setup(self, shape):
        self.dev = cuda_device_or_skip()
        self.layer = nn.BatchNorm2d(shape[1]).to("cuda")
        self.x = self.dev.asarray(data(shape))
        self.gy = self.dev.asarray(data(shape, seed=1))
        self.time_forward_backward(shape)      # compile and plan outside the timing

    def time_forward(self, shape):
        self.layer(self.x)
        self.dev.synchronize()

    def time_forward_backward(self, shape):
        self.layer(self.x)
        self.layer.backward(self.gy)
        self.dev.synchronize()

    def track_forward_backward_gbytes_per_s(self, shape):
        # forward: x read twice for the statistics, once to normalise, y written; backward: x and
        # gy read for the sums and again for gx, gx written
        return rate(lambda: self.time_forward_backward(shape),
                    9 * 4 * int(np.prod(shape))) / 1e9

    track_forward_backward_gbytes_per_s.unit = "GB/s"


class LaunchCost:
    """Host time of one kernel launch: minicnn's bare launch (numba's marshalling cached per
    array, ``minicnn.cuda_launch``) against numba's ordinary call, for a kernel with two arrays
    and one with nine (batch norm's normalising kernel, on one element)."""
    params = (["bare", "ordinary"],)
    param_names = ["path"]

    def setup(self, path):
        self.dev = cuda_device_or_skip()
        from minicnn import cuda_device, cuda_launch
        from minicnn.layers import norm_cuda
        if path == "bare" and not cuda_launch.available():
            raise NotImplementedError("bare launches need numba-cuda with cuda.core")
        self.saved = cuda_launch.available
        cuda_launch.available = (lambda: True) if path == "bare" else (lambda: False)
        cuda_device.set_launch()              # drop launchers configured the other way
        self.cuda_launch = cuda_launch
        a, b = self.dev.zeros((1,), np.float32), self.dev.zeros((1,), np.float32)
        f64 = [self.dev.zeros((1,), np.float64) for _ in range(2)]
        count, flags = self.dev.zeros((0,), np.int64), self.dev.zeros((1,), np.int64)
        self.two = lambda: cuda_device.launch(cuda_device._copy_kernel, 1, a, b)
        self.nine = lambda: cuda_device.launch(
            norm_cuda.batchnorm_normalize, 1, a, b, a, a, f64[0], f64[1], 1, 1, True, -1, 0.0,
            b, count, flags, 1)
        for fn in (self.two, self.nine):
            fn()
        self.dev.synchronize()

    def teardown(self, path):
        self.cuda_launch.available = self.saved
        from minicnn import cuda_device
        cuda_device.set_launch()

    def track_two_arrays_us(self, path):
        return 1e6 * best_seconds(self.two, repeat=5, number=200)

    track_two_arrays_us.unit = "us per launch"

    def track_nine_arrays_us(self, path):
        return 1e6 * best_seconds(self.nine, repeat=5, number=200)

    track_nine_arrays_us.unit = "us per launch"


class ReLUDevice:
    params = ([(32, 64, 56, 56)],)
    param_names = ["shape"]

    def setup(self, shape):
        self.dev = cuda_device_or_skip()
        self.layer = nn.ReLU().to("cuda")
        self.x = self.dev.asarray(data(shape))
        self.time_forward(shape)

    def time_forward(self, shape):
        self.layer(self.x)
        self.dev.synchronize()

    def track_forward_gbytes_per_s(self, shape):
        return rate(lambda: self.time_forward(shape), 2 * 4 * int(np.prod(shape))) / 1e9

    track_forward_gbytes_per_s.unit = "GB/s"


def _conv_flops(shape):
    n, c, h, w, o, k, s, p = shape
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    return 2 * n * o * oh * ow * c * k * k


class ConvDirections:
    """Each direction of a convolution alone (the kernel functions, no executor): "auto" is the
    kernel minicnn chooses (tiled implicit GEMM on these shapes), "direct" the plain one."""

    params = (CONV_SHAPES, ["auto", "direct"])
    param_names = ["n_c_h_w_o_k_s_p", "path"]
    timeout = 300

    def setup(self, shape, path):
        self.dev = cuda_device_or_skip()
        from minicnn.layers import conv_cuda
        from minicnn.layers import conv_tiled_cuda as tiled
        self.tiled, self.saved = tiled, tiled.MIN_CHANNELS
        if path == "direct":
            tiled.MIN_CHANNELS = 1 << 40
        n, c, h, w, o, k, s, p = shape
        layer = nn.Conv2d(c, o, k, stride=s, padding=p)
        values = conv_cuda.geometry_values(layer, (n, c, h, w))
        oh, ow = layer.out_spatial((h, w))
        dev = self.dev

        def on_device(a):
            return dev.asarray(a).reshape(a.size)
        x, gy = on_device(data((n, c, h, w))), on_device(data((n, o, oh, ow), seed=1))
        wt, b = on_device(layer.weight.data), on_device(layer.bias.data)
        y, gx = dev.empty((n * o * oh * ow,), np.float32), dev.empty((n * c * h * w,), np.float32)
        gw = dev.empty((layer.weight.size,), np.float32)
        ws = {key: dev.empty(sh, t) for key, (sh, t) in
              conv_cuda.conv_workspace(values, layer.weight.size, np.float32).items()}
        self.forward = lambda: conv_cuda.run_forward(x, wt, b, y, values, ws=ws)
        self.backward_data = lambda: conv_cuda.run_backward_data(gy, wt, gx, values, ws=ws)
        self.backward_weight = lambda: conv_cuda.run_backward_weight(x, gy, gw, values, ws)
        for fn in (self.forward, self.backward_data, self.backward_weight):
            fn()                     # compile outside the timing
        dev.synchronize()

    def teardown(self, shape, path):
        self.tiled.MIN_CHANNELS = self.saved

    def _timed(self, fn):
        fn()
        self.dev.synchronize()

    def time_forward(self, shape, path):
        self._timed(self.forward)

    def time_backward_data(self, shape, path):
        self._timed(self.backward_data)

    def time_backward_weight(self, shape, path):
        self._timed(self.backward_weight)

    def track_forward_tflops(self, shape, path):
        return rate(lambda: self._timed(self.forward), _conv_flops(shape)) / 1e12

    track_forward_tflops.unit = "TFLOP/s"

    def track_backward_tflops(self, shape, path):
        def both():
            self.backward_data()
            self.backward_weight()
            self.dev.synchronize()
        return rate(both, 2 * _conv_flops(shape)) / 1e12

    track_backward_tflops.unit = "TFLOP/s"


class ConvCuDNN:
    """The same convolutions in PyTorch (cuDNN, TF32 off, benchmark mode): the reference."""

    params = (CONV_SHAPES,)
    param_names = ["n_c_h_w_o_k_s_p"]

    def setup(self, shape):
        cuda_device_or_skip()
        try:
            import torch
        except ImportError:
            raise NotImplementedError("PyTorch is not installed") from None
        if not torch.cuda.is_available():
            raise NotImplementedError("PyTorch has no CUDA here")
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
        self.torch = torch
        n, c, h, w, o, k, s, p = shape
        x = torch.from_numpy(data((n, c, h, w))).cuda()
        wt = torch.from_numpy(data((o, c, k, k), seed=2) * 0.1).cuda()
        b = torch.zeros(o, device="cuda")
        oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
        gy = torch.from_numpy(data((n, o, oh, ow), seed=1)).cuda()

        def back(mask):
            return torch.ops.aten.convolution_backward(gy, x, wt, None, [s, s], [p, p], [1, 1],
                                                       False, [0, 0], 1, mask)
        self.forward = lambda: torch.nn.functional.conv2d(x, wt, b, s, p)
        self.backward_data = lambda: back([True, False, False])
        self.backward_weight = lambda: back([False, True, False])
        for fn in (self.forward, self.backward_data, self.backward_weight):
            fn()
        torch.cuda.synchronize()

    def _timed(self, fn):
        fn()
        self.torch.cuda.synchronize()

    def time_forward(self, shape):
        self._timed(self.forward)

    def time_backward_data(self, shape):
        self._timed(self.backward_data)

    def time_backward_weight(self, shape):
        self._timed(self.backward_weight)

    def track_forward_tflops(self, shape):
        return rate(lambda: self._timed(self.forward), _conv_flops(shape)) / 1e12

    track_forward_tflops.unit = "TFLOP/s"


class ConvTranspose2dDevice:
    """The DCGAN-style 2x upsampling (k4, s2, p1) on the device, forward and forward+backward."""

    params = ([(32, 128, 16, 16, 64)],)
    param_names = ["n_cin_h_w_cout"]

    def setup(self, shape):
        self.dev = cuda_device_or_skip()
        n, cin, h, w, cout = shape
        self.layer = nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1).to("cuda")
        self.x = self.dev.asarray(data((n, cin, h, w)))
        self.gy = self.dev.asarray(data((n, cout, 2 * h, 2 * w), seed=1))
        self.flops = 2 * n * cin * cout * 16 * h * w
        self.time_forward_backward(shape)

    def time_forward(self, shape):
        self.layer(self.x)
        self.dev.synchronize()

    def time_forward_backward(self, shape):
        self.layer(self.x)
        self.layer.backward(self.gy)
        self.dev.synchronize()

    def track_forward_tflops(self, shape):
        return rate(lambda: self.time_forward(shape), self.flops) / 1e12

    track_forward_tflops.unit = "TFLOP/s"


class ZeroPadDevice:
    params = ([(32, 64, 56, 56)],)
    param_names = ["shape"]

    def setup(self, shape):
        self.dev = cuda_device_or_skip()
        self.layer = nn.ZeroPad2d(1).to("cuda")
        self.x = self.dev.asarray(data(shape))
        self.time_forward(shape)

    def time_forward(self, shape):
        self.layer(self.x)
        self.dev.synchronize()

    def track_forward_gbytes_per_s(self, shape):
        n, c, h, w = shape
        moved = 4 * n * c * (h * w + (h + 2) * (w + 2))
        return rate(lambda: self.time_forward(shape), moved) / 1e9

    track_forward_gbytes_per_s.unit = "GB/s"
