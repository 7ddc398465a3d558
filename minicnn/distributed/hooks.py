"""Hooks in the executor's plans: gradient readiness during backward, synced batch-norm kernels.

The executor runs backward as a loop over its plan's steps, last layer first. Data-parallel
training wants to know when a layer's parameter gradients are final (to start their bucket's
allreduce while earlier layers are still being differentiated) and, with synced batch norm, to run
a different kernel for batch-norm nodes. Both are done by wrapping each step's kernel in the plans
of the model's executor, without changing the model:

* a step's parameters are final once its kernel has run at the layer's *last* step in backward
  order (a layer used at several nodes is differentiated at each; the executor adds the second
  node's gradient after that node's kernel returns, so readiness is reported at the start of the
  next kernel, or at the end of backward);
* between kernels, MPI is given a chance to progress started collectives.

The executor exposes no public hook for this yet; this module is the one place that reaches into
its plans (``Executor._build``, ``Executor._plans``, ``Plan.steps``, ``Step.kernel``). If they
change, :meth:`PlanHooks.install` returns False: gradients are then reduced after backward (no
overlap) and synced batch norm reports that it is unavailable.
"""

from .syncbn import SyncBatchNormKernel, is_batchnorm


class HookedKernel:
    """A step's kernel with the data-parallel hooks around its backward."""

    passes_gradient = False   # its backward runs, so the hooks around it do

    def __init__(self, inner, hooks, final):
        self.inner, self.hooks, self.final = inner, hooks, final
        self.layer, self.device = inner.layer, inner.device

    def workspace(self, layer, in_shapes, out_shapes, dtype):
        return self.inner.workspace(layer, in_shapes, out_shapes, dtype)

    def forward(self, layer, xs, ys, ws):
        self.inner.forward(layer, xs, ys, ws)

    def backward(self, layer, xs, ys, gys, gxs, ws, grads):
        hooks = self.hooks
        if hooks.active:
            hooks.flush()
        self.inner.backward(layer, xs, ys, gys, gxs, ws, grads)
        if hooks.active and self.final:
            hooks.defer(layer)

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __repr__(self):
        return f"<hooked {self.inner!r}>"


class PlanHooks:
    """Installs the wrappers in a model's executor and routes their calls during a step."""

    def __init__(self, comm, sync_batchnorm=False):
        self.comm = comm
        self.sync_batchnorm = bool(sync_batchnorm)
        self.active = False        # report gradient readiness (inside a data-parallel backward)
        self.in_step = False       # synced batch norm talks to the other ranks only inside a step
        self.synced_forwards = 0   # batch-norm forwards that used global statistics
        self.buckets = None
        self._deferred = []
        self._executor = None

    @property
    def installed(self):
        return self._executor is not None

    def install(self, model):
        """Wrap the kernels of every plan the model's executor has or will build; True on
        success."""
        executor = model._get_executor()
        if executor is self._executor:
            return True
        build, plans = getattr(executor, "_build", None), getattr(executor, "_plans", None)
        if build is None or not isinstance(plans, dict):
            self._executor = None
            return False

        def hooked_build(*args, **kwargs):
            plan = build(*args, **kwargs)
            self.instrument(plan)
            return plan

        executor._build = hooked_build
        for plan in list(plans.values()):
            self.instrument(plan)
        self._executor = executor
        return True

    def instrument(self, plan):
        steps = plan.steps
        last = {}                  # layer -> index of its step that backward reaches last
        for index, step in enumerate(steps):
            last.setdefault(id(step.layer), index)
        for index, step in enumerate(steps):
            if isinstance(step.kernel, HookedKernel):
                continue
            inner = step.kernel
            if self.sync_batchnorm and is_batchnorm(step.layer):
                inner = SyncBatchNormKernel(inner, self, step.name)
            step.kernel = HookedKernel(inner, self, last[id(step.layer)] == index)

    # -- during backward --------------------------------------------------------------------------

    def begin_backward(self, buckets):
        self.buckets, self._deferred, self.active = buckets, [], True

    def defer(self, layer):
        self._deferred.extend(p for p in layer._own_params().values() if p.requires_grad)

    def flush(self):
        if self._deferred:
            params, self._deferred = self._deferred, []
            self.buckets.ready(params, self.comm)
        self.comm.progress()

    def end_backward(self):
        if self.active:
            self.flush()
        self.active = False
