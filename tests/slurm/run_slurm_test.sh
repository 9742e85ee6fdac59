#!/usr/bin/env bash
# LOSO as a Slurm job array on a real single-node Slurm (munged, slurmctld, slurmd from the Debian
# packages, started here by scripts/slurm/local_cluster.sh and stopped on exit):
#  1. a 6-subject synthetic corpus, 2 epochs; the one-process run (the reference);
#  2. scripts/slurm/submit_loso.sh --array 1-6 and its dependent report job: metrics.json (and the
#     rest of the report) byte-identical to the reference; the wall time of the array run is printed;
#  3. a fresh run where one array task is killed (scancel -s KILL) in the middle of its fold: the
#     report job is dropped (its dependency can never be met); the killed index is resubmitted; its
#     claim is taken over; the report is again byte-identical to the reference.
# Registered in CTest (CMakeLists.txt) as slurm_loso. When the daemons cannot start (not root, no
# packages and no apt-get, a daemon that exits) it says why and fails when CI=true, else skips (77).
#
#   tests/slurm/run_slurm_test.sh AHMSA_BINARY        (AHMSA_SLURM_TEST_KEEP=1 keeps the work folder)
set -euo pipefail
AHMSA=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=$(mktemp -d /tmp/ahmsa_slurm_test.XXXXXX)
CLUSTER=$W/cluster
started=0
cleanup() {
  if [ "$started" = 1 ]; then
    squeue -h -o %A 2>/dev/null | sort -u | xargs -r scancel --quiet 2>/dev/null || true
    bash "$ROOT/scripts/slurm/local_cluster.sh" stop "$CLUSTER" || true
  fi
  [ "${AHMSA_SLURM_TEST_KEEP:-0}" = 1 ] && echo "slurm test: kept $W" || rm -rf "$W"
}
trap cleanup EXIT
fail() { echo "slurm test: FAIL: $*" >&2; exit 1; }
t0=$(date +%s.%N)
secs() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# ---- the cluster (a port of our own, so two test runs at once do not collide)
export AHMSA_SLURM_PORT=$((20000 + 2 * ($$ % 10000)))
export AHMSA_SLURM_CPUS=2
if ! bash "$ROOT/scripts/slurm/local_cluster.sh" start "$CLUSTER"; then
  bash "$ROOT/scripts/slurm/local_cluster.sh" stop "$CLUSTER" >/dev/null 2>&1 || true
  if [ "${CI:-}" = true ]; then fail "the Slurm daemons could not start (the reason is above)"; fi
  echo "slurm test: SKIPPED: the Slurm daemons could not start (the reason is above)"
  exit 77
fi
started=1
source "$CLUSTER/env.sh"

# ---- the corpus and the one-process reference
"$AHMSA" synth --out "$W/synth" --subjects 6 --clips-per-class 1 --seed 1 --threads 2 >/dev/null
"$AHMSA" prepare --dataset casme2 --root "$W/synth" --annotations "$W/synth/CASME2-coding-synthetic.csv" --out "$W/cache" \
  --threads 2 --quiet >/dev/null 2>&1
TRAIN=(--cache "$W/cache" --model-config "size=28;stem=8;channels=32,32" --epochs 2 --batch 8 --seed 1 --device cpu)
"$AHMSA" train "${TRAIN[@]}" --out "$W/ref" --threads 1 --quiet >/dev/null 2>"$W/ref.err" || { cat "$W/ref.err"; fail "reference run"; }
REPORT_FILES=(metrics.json megc_log.txt predictions.csv summary.txt confusion.png curves.png)
same_report() {  # same_report RUN: every report file byte-identical to the reference's
  local f
  for f in "${REPORT_FILES[@]}"; do cmp -s "$W/ref/$f" "$1/$f" || fail "$1/$f differs from the one-process run's"; done
}
job_state() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | sort -u | tr '\n' ' ' | sed 's/ $//'; }
wait_jobs() {  # wait_jobs SECONDS JOB...: until none of the jobs is pending or running
  local limit=$1
  shift
  local ids
  ids=$(IFS=,; echo "$*")
  for _ in $(seq 1 $((limit * 10))); do
    squeue -h -j "$ids" 2>/dev/null | grep -q . || return 0
    sleep 0.1
  done
  squeue -j "$ids" >&2
  fail "jobs $* still queued after $limit s"
}
submit() { bash "$ROOT/scripts/slurm/submit_loso.sh" --parsable --cpus 1 --time 00:10:00 --ahmsa "$AHMSA" "$@" -- "${TRAIN[@]}" 2>>"$W/submit.err"; }

# ---- 2. the array run
ts=$(date +%s.%N)
read -r JOB RJOB < <(submit --out "$W/run" --array 1-6)
wait_jobs 300 "$JOB" "$RJOB"
array_secs=$(secs "$ts")
[ "$(job_state "$JOB")" = COMPLETED ] || fail "array job $JOB: $(job_state "$JOB")"
[ "$(job_state "$RJOB")" = COMPLETED ] || { cat "$W/run/slurm/report_$RJOB.out" >&2; fail "report job $RJOB: $(job_state "$RJOB")"; }
same_report "$W/run"
for i in 1 2 3 4 5 6; do
  grep -q "\"slurm_job\": \"${JOB}_$i\"" "$W/run/fold_0$i/claim.json" || fail "fold $i was not trained by array task ${JOB}_$i"
done
echo "slurm test: array run of 6 folds (6 tasks, 1 CPU each, 2 CPUs) and its report job: $array_secs s; report identical to the one-process run"

# ---- 3. one task killed in the middle of its fold, resubmitted
read -r JOB2 RJOB2 < <(submit --out "$W/run2" --array 1-6)
victim=""
for _ in $(seq 1 3000); do  # a task whose fold is claimed and not finished: stop it there
  for i in 1 2 3 4 5 6; do
    c=$W/run2/fold_0$i/claim.json
    if [ -f "$c" ] && grep -q '"state": "working"' "$c" 2>/dev/null; then
      scontrol suspend "${JOB2}_$i" 2>/dev/null || continue
      if grep -q '"state": "working"' "$c" 2>/dev/null && [ ! -f "$W/run2/fold_0$i/done.json" ]; then
        victim=$i
        pid=$(sed -n 's/.*"pid": \([0-9]*\).*/\1/p' "$c")
        scancel --signal=KILL --full "${JOB2}_$i"
        scontrol resume "${JOB2}_$i" 2>/dev/null || true
        break 2
      fi
      scontrol resume "${JOB2}_$i" 2>/dev/null || true
    fi
  done
  sleep 0.01
done
[ -n "$victim" ] || fail "never caught a task in the middle of its fold"
wait_jobs 300 "$JOB2"
[ ! -f "$W/run2/fold_0$victim/done.json" ] || fail "the killed task's fold $victim has a done.json"
[ ! -f "$W/run2/metrics.json" ] || fail "a report was written with fold $victim missing"
# The report job's dependency can never be met: Slurm drops it (--kill-on-invalid-dep).
for _ in $(seq 1 100); do squeue -h -j "$RJOB2" 2>/dev/null | grep -q . || break; sleep 0.1; done
state=$(job_state "$RJOB2")
[ "$state" = CANCELLED ] || fail "report job $RJOB2 after a failed task: $state, expected CANCELLED"
"$AHMSA" report "$W/run2" >/dev/null 2>"$W/report2.err" && fail "ahmsa report succeeded with fold $victim missing"
grep -q "fold $victim (casme2/sub0$victim): abandoned: claimed by host .* pid $pid.*that process is gone" "$W/report2.err" ||
  { cat "$W/report2.err" >&2; fail "ahmsa report does not name the abandoned fold $victim"; }
read -r JOB3 RJOB3 < <(submit --out "$W/run2" --array "$victim")
wait_jobs 300 "$JOB3" "$RJOB3"
[ "$(job_state "$RJOB3")" = COMPLETED ] || { cat "$W/run2/slurm/report_$RJOB3.out" >&2; fail "report job $RJOB3: $(job_state "$RJOB3")"; }
grep -q "\"took_over_from\": \".*pid $pid.*that process is gone" "$W/run2/fold_0$victim/claim.json" ||
  fail "fold $victim's claim does not record the takeover from pid $pid"
grep -q "\"slurm_job\": \"${JOB3}_$victim\"" "$W/run2/fold_0$victim/claim.json" || fail "fold $victim not trained by ${JOB3}_$victim"
same_report "$W/run2"
echo "slurm test: task ${JOB2}_$victim killed mid-fold, resubmitted as ${JOB3}_$victim: report identical to the one-process run"
echo "slurm test: passed in $(secs "$t0") s"
