# BP and FA with batch 64, beside queue_c.sh's FFA with batch 64.
cd "$(dirname "$(readlink -f "$0")")/../.." || exit 1  # the repository root
export OMP_NUM_THREADS=1 MALLOC_MMAP_THRESHOLD_=4000000000 MALLOC_TRIM_THRESHOLD_=8000000000
R="nice -n 10 .venv/bin/python benchmarks/ffa/run_cpu.py"
$R --dataset mnist10k --method bp --width 16 --epochs 100 --batch-size 64 --budget-s 360 --tag=-b64
$R --dataset mnist10k --method fa --width 16 --epochs 100 --batch-size 64 --budget-s 360 --tag=-b64
