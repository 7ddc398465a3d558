"""The plugin contract: every hook a plugin (built-in or third-party) may implement.

minicnn follows pytest's way: the built-in layers, kernels and losses register through exactly these
hooks, from a list of module names in :mod:`minicnn.registry`. A third-party package registers a
module or object in the entry-point group ``minicnn``::

    # pyproject.toml of the plugin
    [project.entry-points.minicnn]
    my_plugin = "my_plugin.hooks"

and implements any of the hooks below with the ``minicnn.hookimpl`` marker::

    import minicnn

    @minicnn.hookimpl
    def minicnn_layers():
        return [Swish]

Every hook *returns what it registers*; the registry collects the results plugin by plugin, so it
can say which plugin registered what. The hooks take no arguments and are called once, when the
plugin is registered, except :func:`minicnn_device_kernels`, which takes a device name and is
called the first time that device is used, so that a plugin's GPU code (numba.cuda) is imported
only by a process that runs on the GPU. Registering a name that another plugin already holds is
a :class:`minicnn.PluginError` naming both plugins, unless the registration says ``override=True``
(kernels only). A hook that raises is a ``PluginError`` naming the plugin and the hook, and nothing
that plugin registered stays in the registry (for the device hook: nothing it returned for that
device).
"""

import pluggy

hookspec = pluggy.HookspecMarker("minicnn")


@hookspec
def minicnn_layers():
    """Layer classes this plugin provides.

    :return: a list of :class:`minicnn.Layer` subclasses. Each is known by its ``type_name``
        (the class name by default), which must be unique across plugins: it is the name saved in
        model files and the name kernels are looked up by.
    """


@hookspec
def minicnn_kernels():
    """Kernels (forward and backward code for one layer type on one device) this plugin provides.

    :return: a list of :class:`minicnn.Kernel` instances (or subclasses, which are
        instantiated). A kernel names its layer type (``layer = "Conv2d"``) and device
        (``device = "cpu"`` or ``"cuda"``); one (layer, device) pair has one kernel. A plugin may
        add a kernel for another plugin's layer (a GPU kernel for a CPU-only layer, say) or
        replace one by setting ``override = True`` on its kernel. GPU kernels whose module
        imports numba.cuda belong in :func:`minicnn_device_kernels` instead, so that loading the
        plugin stays free of CUDA.
    """


@hookspec
def minicnn_device_kernels(device):
    """Kernels for a device that is loaded lazily (``"cuda"``), asked for when it is first used.

    :param device: the device name, ``"cuda"`` today (never ``"cpu"``: CPU kernels come from
        :func:`minicnn_kernels`).
    :return: a list of :class:`minicnn.Kernel` instances or subclasses whose ``device`` is
        ``device``, or an empty list (or None) when the plugin has none for it. Import the
        device's modules inside the hook::

            @minicnn.hookimpl
            def minicnn_device_kernels(device):
                if device != "cuda":
                    return []
                from .swish_cuda import SwishCUDA      # imports numba.cuda
                return [SwishCUDA]

        :meth:`minicnn.registry.Registry.enable_device` calls this hook of every registered plugin
        once per device, the first time a model, layer or executor runs there (``model.to("cuda")``)
        and after minicnn's own kernels for that device; a plugin registered later is asked at
        registration. By then the device exists, so numba.cuda is set up (or its simulator, with
        ``NUMBA_ENABLE_CUDASIM=1``). The kernels follow the rules of :func:`minicnn_kernels`
        (duplicates are errors naming both plugins unless ``override = True``); a hook that raises
        or returns a kernel for another device is a :class:`minicnn.PluginError` naming the plugin
        and the hook, and none of that plugin's kernels for the device are added.
    """


@hookspec
def minicnn_losses():
    """Loss layers this plugin provides.

    :return: a list of :class:`minicnn.Loss` subclasses. Losses are layers too (their kernels
        are looked up the same way); this hook also lists them by name for the trainer and the
        command line.
    """


@hookspec
def minicnn_models():
    """Model constructors this plugin provides (the model zoo).

    :return: a dict mapping a model name (``"lenet5"``) to a callable that returns a
        :class:`minicnn.Model`; keyword arguments such as ``num_classes`` are passed through.
    """


@hookspec
def minicnn_datasets():
    """Datasets this plugin provides.

    :return: a dict mapping a dataset name (``"shapes"``) to a callable that returns the
        dataset; its keyword arguments (``root``, ``train``, ``seed``...) are passed through.
    """


@hookspec
def minicnn_commands():
    """Subcommands of the ``minicnn`` command line.

    :return: a list of :class:`minicnn.Command`: a name, a one-line help, a function that adds
        arguments to an ``argparse`` parser and a function that runs with the parsed arguments and
        returns an exit code.
    """
