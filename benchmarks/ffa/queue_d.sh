# Re-run of the Fashion-MNIST FFA run after queue_b.sh (its first run got 2 epochs under heavier contention).
cd "$(dirname "$(readlink -f "$0")")/../.." || exit 1  # the repository root
export OMP_NUM_THREADS=1 MALLOC_MMAP_THRESHOLD_=4000000000 MALLOC_TRIM_THRESHOLD_=8000000000
R="nice -n 10 .venv/bin/python benchmarks/ffa/run_cpu.py"
$R --dataset fashion --method ffa --width 8 --epochs 100 --budget-s 660
