cd "$(dirname "$(readlink -f "$0")")/../.." || exit 1  # the repository root
export OMP_NUM_THREADS=1 MALLOC_MMAP_THRESHOLD_=4000000000 MALLOC_TRIM_THRESHOLD_=8000000000
R="nice -n 10 .venv/bin/python benchmarks/ffa/run_cpu.py"
$R --dataset mnist10k --method ae-bp --width 16 --epochs 100 --budget-s 420
$R --dataset mnist10k --method ae-fa --width 16 --epochs 100 --budget-s 420
$R --dataset fashion --method ffa --width 8 --epochs 100 --budget-s 780
$R --dataset fashion --method bp --width 8 --epochs 100 --budget-s 420
$R --dataset fashion --method fa --width 8 --epochs 100 --budget-s 420
