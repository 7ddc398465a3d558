#!/usr/bin/env bash
# Every real-GPU run the open issues still owe, grouped so that each group fits one call of the
# device tool (10 minutes). Run from the repository root on the GPU machine, without installing:
#
#   bash scripts/gpu_session.sh check      # scripts/gpu_check.py: parity, gradchecks, training, conv table
#   bash scripts/gpu_session.sh convs      # the conv table only, with the direct kernels timed too
#   bash scripts/gpu_session.sh tests      # the CUDA test modules, unsimulated (MINICNN_TEST_REAL_GPU=1)
#   bash scripts/gpu_session.sh compare    # scripts/compare_torch.py --device cuda --cpu-baseline
#   bash scripts/gpu_session.sh bench      # the core GPU asv benchmarks (run directly), host overhead
#   bash scripts/gpu_session.sh bench-plugins  # the detection and style-transfer GPU benchmarks
#   bash scripts/gpu_session.sh plugins    # check-plugin --strict on the GPU; style transfer vs PyTorch
#   bash scripts/gpu_session.sh profile    # launch costs, cProfile and per-kernel GPU time of steps
#   bash scripts/gpu_session.sh tune       # every candidate tile of the tiled convolutions, timed
#
# Each command's whole output goes to $OUT/<name>.log (OUT defaults to ./gpu-logs); its exit code,
# time and last lines are printed. numba's cache stays in the checkout, so a later group on the
# same (warm) machine does not compile again.
set -u
OUT=${OUT:-gpu-logs}
mkdir -p "$OUT"
# absolute: some tests start Python in another directory
P=$PWD/plugins
export PYTHONPATH="$PWD:$P/detection:$P/style_transfer:$P/template:$P/saliency:$P/segmentation${PYTHONPATH:+:$PYTHONPATH}"
export MINICNN_DISABLE_PLUGIN_AUTOLOAD=1   # plugins come from PYTHONPATH, registered by name

run() {   # run NAME SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    echo "== $name: $*"
    local start=$SECONDS
    timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    echo "   exit $rc after $((SECONDS - start)) s (log: $OUT/$name.log)"
    tail -n "${TAIL:-30}" "$OUT/$name.log"
}

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null
python3 -c "import numba, numpy; print('numba', numba.__version__, 'numpy', numpy.__version__)"

case "${1:-}" in
check)
    run gpu_check 570 python3 scripts/gpu_check.py
    ;;
convs)    # is each tiled kernel faster than the direct one where it is chosen? (MIN_CHANNELS)
    TAIL=70 run gpu_check_convs 570 python3 scripts/gpu_check.py --conv-only --direct --repeat 5
    ;;
tests)
    run pytest_real_gpu 570 env MINICNN_TEST_REAL_GPU=1 python3 -m pytest -q -p no:cacheprovider \
        tests/test_cuda_device.py tests/test_cuda_layers.py tests/test_cuda_optim.py \
        tests/test_cuda_tiled.py tests/test_cuda_fusion.py tests/test_cuda_ptx.py \
        plugins/detection/tests/test_detection_roi_cuda.py \
        plugins/style_transfer/tests/test_style_cuda.py plugins/template/tests
    ;;
compare)
    TAIL=60 run compare_torch 570 python3 scripts/compare_torch.py --device cuda --cpu-baseline
    ;;
bench)
    TAIL=40 run bench_cuda 330 python3 scripts/run_benchmarks.py bench_cuda
    TAIL=20 run bench_training 200 python3 scripts/run_benchmarks.py bench_training TrainingStep
    run host_overhead 60 python3 scripts/cuda_host_overhead.py --compare-fusion --batch 256
    ;;
bench-plugins)    # apart from bench: together their limits would pass one call's 10 minutes
    TAIL=20 run bench_plugins_cuda 200 python3 scripts/run_benchmarks.py bench_detection CUDA
    TAIL=20 run bench_style_cuda 120 python3 scripts/run_benchmarks.py bench_style_transfer CUDA
    ;;
plugins)
    for plugin in minicnn_swish minicnn_detection minicnn_style_transfer; do
        run "check_plugin_$plugin" 120 python3 -m minicnn check-plugin --strict "$plugin"
    done
    if [ -f plugins/style_transfer/examples/compare_torch_tutorial.py ]; then
        TAIL=40 run style_vs_torch 300 python3 plugins/style_transfer/examples/compare_torch_tutorial.py \
            --device cuda --size 256 --iterations 300 --out "$OUT/style"
    fi
    ;;
tune)     # which tiles, split counts and MIN_GRID conv_tiled_cuda should choose
    TAIL=70 run tune_conv_tiles 570 python3 scripts/tune_conv_tiles.py --json "$OUT/tune.json"
    ;;
profile)
    TAIL=80 run profile 150 python3 scripts/profile_cuda_step.py --steps 20 --top 15
    TAIL=60 run profile_per_kernel 150 python3 scripts/profile_cuda_step.py --per-kernel --top 25
    ;;
*)
    sed -n '2,17p' "$0"
    exit 2
    ;;
esac
