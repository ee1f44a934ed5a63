# Batch-256 runs with the authors' BP decoder (an untrained random initialisation, F's BatchNorm parameters):
# BP and FA on the MNIST subset, then on Fashion-MNIST; FFA (unaffected by that change) ran just before with
# run_cpu.py --method ffa --budget-s 720. One run at a time, 1 torch thread, each under 15 minutes wall.
cd "$(dirname "$(readlink -f "$0")")/../.." || exit 1  # the repository root
export OMP_NUM_THREADS=1 MALLOC_MMAP_THRESHOLD_=4000000000 MALLOC_TRIM_THRESHOLD_=8000000000
R="nice -n 5 .venv/bin/python benchmarks/ffa/run_cpu.py"
$R --dataset mnist10k --method bp --width 16 --epochs 100 --budget-s 720
$R --dataset mnist10k --method fa --width 16 --epochs 100 --budget-s 720
$R --dataset fashion --method bp --width 8 --epochs 100 --budget-s 600
$R --dataset fashion --method fa --width 8 --epochs 100 --budget-s 600
