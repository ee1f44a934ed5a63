# After queue_f.sh: a second FFA seed at batch 256, and the previous BP decoder (bp-copy: B = F's transposed
# weights, F's BN parameters) at batch 256 beside the new bp. One run at a time, each under 15 minutes wall.
cd "$(dirname "$(readlink -f "$0")")/../.." || exit 1  # the repository root
export OMP_NUM_THREADS=1 MALLOC_MMAP_THRESHOLD_=4000000000 MALLOC_TRIM_THRESHOLD_=8000000000
R="nice -n 5 .venv/bin/python benchmarks/ffa/run_cpu.py"
$R --dataset mnist10k --method ffa --width 16 --epochs 100 --budget-s 720 --seed 1 --tag=-s1
$R --dataset mnist10k --method bp-copy --width 16 --epochs 100 --budget-s 600
# added after the two runs above: BP seed 1, to pair with FFA seed 1
$R --dataset mnist10k --method bp --width 16 --epochs 100 --budget-s 720 --seed 1 --tag=-s1
