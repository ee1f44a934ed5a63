# After queue_g.sh, with no other job on the machine: FFA seed 0 at batch 256 with both cores (2 torch threads),
# the issue's "each run within 15 minutes on 2 cores"; BP/FA stay the 1-thread runs (they converge well within budget).
cd "$(dirname "$(readlink -f "$0")")/../.." || exit 1  # the repository root
export OMP_NUM_THREADS=2 MALLOC_MMAP_THRESHOLD_=4000000000 MALLOC_TRIM_THRESHOLD_=8000000000
.venv/bin/python benchmarks/ffa/run_cpu.py --dataset mnist10k --method ffa --width 16 --epochs 100 --budget-s 720 \
  --threads 2 --tag=-t2
