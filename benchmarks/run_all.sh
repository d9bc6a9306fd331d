#!/usr/bin/env bash
# Runs every benchmark of docs/performance.md in sequence on this machine and writes the JSON
# results to benchmarks/results/ (logs to benchmarks/results/logs/, not in git), then prints
# the tables (python -m benchmarks.report) and the plots (python -m benchmarks.plots).
# Full run: about 2 h on 2 cores. Run it on an
# otherwise idle machine; every figure is still a ratio measured within one process or run.
#
#   bash benchmarks/run_all.sh            # all, in the order below
#   bash benchmarks/run_all.sh peer export_speed   # a subset, by name
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=benchmarks/results
mkdir -p "$OUT/logs"
declare -A CMD=(
  [export_speed]="-m benchmarks.export_speed --out=$OUT"
  [serving_load]="-m benchmarks.serving_load --out=$OUT"
  [cotraining_overhead]="-m benchmarks.cotraining_overhead --rounds=12 --out=$OUT"
  [input_pipeline]="-m benchmarks.input_pipeline --consumption --parallel=1,2,-1 --out=$OUT"
  [train_step]="-m benchmarks.train_step --out=$OUT"
  [train_step_batch8]="-m benchmarks.train_step --sizes=S,B --modalities=image,audio --variants=fp32 --batch=8 --tag=batch8 --out=$OUT"
  [peer]="-m benchmarks.peer --out=$OUT"
  [peer_xla]="-m benchmarks.peer --xla=on --out=$OUT/xla"
  [profile_S_audio]="-m benchmarks.profile_step --size=S --modality=audio --out=$OUT"
  [profile_B_image]="-m benchmarks.profile_step --size=B --modality=image --out=$OUT"
  [token_dense]="-m benchmarks.token_dense --out=$OUT"
  [audio_front_end]="-m benchmarks.audio_front_end --out=$OUT"
  [eval_memory]="-m benchmarks.eval_memory --out=$OUT"
  [eval_memory_batch2]="-m benchmarks.eval_memory --batch=2 --tag=batch2 --out=$OUT"
)
ORDER=(export_speed serving_load cotraining_overhead input_pipeline train_step
       train_step_batch8 peer peer_xla profile_S_audio profile_B_image token_dense
       audio_front_end eval_memory eval_memory_batch2)
[ $# -gt 0 ] && ORDER=("$@")
status=0
for name in "${ORDER[@]}"; do
  [ -n "${CMD[$name]:-}" ] || { echo "unknown benchmark: $name (one of ${!CMD[*]})"; exit 2; }
  echo "=== $name: $PY ${CMD[$name]} ($(date +%T))" | tee -a "$OUT/logs/chain.log"
  PYTHONWARNINGS=ignore::FutureWarning $PY ${CMD[$name]} >"$OUT/logs/$name.log" 2>&1
  rc=$?
  echo "=== $name exit $rc ($(date +%T))" | tee -a "$OUT/logs/chain.log"
  [ $rc -eq 0 ] || status=$rc
done
$PY -m benchmarks.plots --results="$OUT" --out=docs/performance
$PY -m benchmarks.report --results="$OUT"
exit $status
