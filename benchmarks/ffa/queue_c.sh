# Third batch (after queue_a.sh): FFA and BP with batch 64 (4x more updates per epoch than the authors' 256).
cd "$(dirname "$(readlink -f "$0")")/../.." || exit 1  # the repository root
export OMP_NUM_THREADS=1 MALLOC_MMAP_THRESHOLD_=4000000000 MALLOC_TRIM_THRESHOLD_=8000000000
R="nice -n 10 .venv/bin/python benchmarks/ffa/run_cpu.py"
$R --dataset mnist10k --method ffa --width 16 --epochs 100 --batch-size 64 --budget-s 600 --tag=-b64
