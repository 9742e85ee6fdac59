#!/usr/bin/env bash
# LOSO on a Slurm cluster: one array task per fold, then the report as a dependent job.
#
#   scripts/slurm/submit_loso.sh --out RUN [options] -- [ahmsa train options: --cache DIR, settings...]
#
# The train options are checked here first (`ahmsa train ... --write-config RUN/slurm/run.toml`: a
# typo fails now, not in 68 tasks), and every task reads that run file. Then
#   sbatch --array=SPEC loso_task.sbatch RUN/slurm/run.toml       (task i trains fold i)
#   sbatch --dependency=afterok:ARRAY --kill-on-invalid-dep=yes report.sbatch RUN
# Logs go to RUN/slurm/ (ARRAY_TASK.out, report_JOB.out). RUN must be on a file system every node
# sees. Resume after a failed or cancelled task: submit the same command again with --array set to
# the failed indices (and --after ARRAY if the first array is still running): folds already done are
# never touched, a claim left by a killed task is taken over (docs/TRAINING.md section 9).
#
# Options (defaults from the environment variables in brackets):
#   --array SPEC        array indices = fold numbers, e.g. 1-68 (default), 5, 3,7 or 1-68%10
#   --cpus N            CPUs per task, also ahmsa's --threads [AHMSA_SLURM_CPUS, 2]
#   --time T            time limit per task [AHMSA_SLURM_TIME, 02:00:00]
#   --mem M             memory per task [AHMSA_SLURM_MEM; unset: the cluster's default]
#   --partition P       [AHMSA_SLURM_PARTITION]    --account A [AHMSA_SLURM_ACCOUNT]    --qos Q [AHMSA_SLURM_QOS]
#   --gpus N            GPUs per task (then pass --device cuda to ahmsa) [AHMSA_SLURM_GPUS]
#   --sbatch-option X   any other sbatch option for both jobs (repeatable), e.g. --sbatch-option=--requeue
#   --after JOB         the report job also waits for JOB to end (the array of an earlier submission)
#   --ahmsa PATH        the ahmsa binary, as the nodes see it [AHMSA, else `ahmsa` on PATH]
#   --no-report         no report job
#   --parsable          print only "ARRAY_JOB_ID REPORT_JOB_ID"
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ARRAY=1-68
CPUS=${AHMSA_SLURM_CPUS:-2}
TIME=${AHMSA_SLURM_TIME:-02:00:00}
MEM=${AHMSA_SLURM_MEM:-}
PARTITION=${AHMSA_SLURM_PARTITION:-}
ACCOUNT=${AHMSA_SLURM_ACCOUNT:-}
QOS=${AHMSA_SLURM_QOS:-}
GPUS=${AHMSA_SLURM_GPUS:-}
AHMSA_BIN=${AHMSA:-}
OUT=""
AFTER=""
REPORT=1
PARSABLE=0
EXTRA=()
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
value() { [ $# -ge 2 ] || { echo "submit_loso: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case $1 in
    --array) value "$@"; ARRAY=$2; shift 2 ;;
    --cpus) value "$@"; CPUS=$2; shift 2 ;;
    --time) value "$@"; TIME=$2; shift 2 ;;
    --mem) value "$@"; MEM=$2; shift 2 ;;
    --partition) value "$@"; PARTITION=$2; shift 2 ;;
    --account) value "$@"; ACCOUNT=$2; shift 2 ;;
    --qos) value "$@"; QOS=$2; shift 2 ;;
    --gpus) value "$@"; GPUS=$2; shift 2 ;;
    --sbatch-option) value "$@"; EXTRA+=("$2"); shift 2 ;;
    --sbatch-option=*) EXTRA+=("${1#--sbatch-option=}"); shift ;;
    --after) value "$@"; AFTER=$2; shift 2 ;;
    --ahmsa) value "$@"; AHMSA_BIN=$2; shift 2 ;;
    --out) value "$@"; OUT=$2; shift 2 ;;
    --no-report) REPORT=0; shift ;;
    --parsable) PARSABLE=1; shift ;;
    -h|--help) usage ;;
    --) shift; break ;;
    *) echo "submit_loso: unknown option $1 (the ahmsa train options go after --)" >&2; exit 2 ;;
  esac
done
[ -n "$OUT" ] || { echo "submit_loso: --out RUN is required" >&2; exit 2; }
[[ $CPUS =~ ^[1-9][0-9]*$ ]] || { echo "submit_loso: --cpus: '$CPUS' is not a positive integer" >&2; exit 2; }
if [ -z "$AHMSA_BIN" ]; then AHMSA_BIN=$(command -v ahmsa || true); fi
[ -n "$AHMSA_BIN" ] && [ -x "$AHMSA_BIN" ] || { echo "submit_loso: no ahmsa binary (give --ahmsa PATH or set AHMSA)" >&2; exit 2; }
AHMSA_BIN=$(cd "$(dirname "$AHMSA_BIN")" && pwd)/$(basename "$AHMSA_BIN")
command -v sbatch >/dev/null || { echo "submit_loso: sbatch is not on PATH (not a Slurm submit host?)" >&2; exit 2; }
mkdir -p "$OUT/slurm"
OUT=$(cd "$OUT" && pwd)
RUNFILE=$OUT/slurm/run.toml

# Checks the options and writes the run file the tasks read (nothing is trained here).
"$AHMSA_BIN" train --out "$OUT" "$@" --write-config "$RUNFILE" >/dev/null

COMMON=(--parsable --time="$TIME" --export="ALL,AHMSA=$AHMSA_BIN")
[ -n "$PARTITION" ] && COMMON+=(--partition="$PARTITION")
[ -n "$ACCOUNT" ] && COMMON+=(--account="$ACCOUNT")
[ -n "$QOS" ] && COMMON+=(--qos="$QOS")
COMMON+=("${EXTRA[@]}")
TASK=(--array="$ARRAY" --cpus-per-task="$CPUS" --output="$OUT/slurm/%A_%a.out")
[ -n "$MEM" ] && TASK+=(--mem="$MEM")
[ -n "$GPUS" ] && TASK+=(--gpus-per-task="$GPUS")
JOB=$(sbatch "${COMMON[@]}" "${TASK[@]}" "$HERE/loso_task.sbatch" "$RUNFILE")
JOB=${JOB%%;*}
RJOB=""
if [ "$REPORT" = 1 ]; then
  DEP="afterok:$JOB"
  [ -n "$AFTER" ] && DEP="$DEP,afterany:$AFTER"
  RJOB=$(sbatch "${COMMON[@]}" --cpus-per-task=1 --dependency="$DEP" --kill-on-invalid-dep=yes \
    --output="$OUT/slurm/report_%j.out" "$HERE/report.sbatch" "$OUT")
  RJOB=${RJOB%%;*}
fi
if [ "$PARSABLE" = 1 ]; then
  echo "$JOB $RJOB"
else
  echo "submit_loso: array job $JOB (--array=$ARRAY, $CPUS CPUs per task) training into $OUT"
  [ -n "$RJOB" ] && echo "submit_loso: report job $RJOB runs when every task has succeeded (afterok:$JOB${AFTER:+, afterany:$AFTER})"
  echo "submit_loso: logs in $OUT/slurm/; state: squeue -j $JOB; folds not done: $AHMSA_BIN report $OUT"
fi
