#!/usr/bin/env bash
# LOSO over a handful of machines with GNU parallel and a folder they all see (no Slurm): one job per
# fold, `ahmsa train ... --out RUN --folds K`, sent over SSH; then `ahmsa report RUN`.
#
#   scripts/slurm/parallel_loso.sh --hosts FILE --out RUN [options] -- [ahmsa train options: --cache DIR, settings...]
#
#   --hosts FILE      GNU parallel's --sshloginfile: one machine a line ("node1", "4/node2" for 4 jobs
#                     there, ":" for this machine)
#   --folds A-B       the fold numbers (default 1-68: the composite's LOSO)
#   --jobs N          jobs at once per machine without a count in FILE (default 1)
#   --threads N       ahmsa's --threads per job (default 0: all cores; use cores / jobs)
#   --ahmsa PATH      the ahmsa binary, as every machine sees it [AHMSA, else `ahmsa` on PATH]
#   --resume-failed   rerun only the folds whose job failed or did not run (GNU parallel's joblog
#                     RUN/parallel/joblog); folds already done are skipped by ahmsa itself in any case
#
# Every job claims its fold before training it (fold_NN/claim.json), so two machines never train
# one fold, and whichever job finishes the last fold writes the report; the final `ahmsa report`
# makes it again (the same bytes) and names any fold that is not done.
set -euo pipefail
HOSTS=""
OUT=""
FOLDS=1-68
JOBS=1
THREADS=0
AHMSA_BIN=${AHMSA:-}
RESUME=()
value() { [ $# -ge 2 ] || { echo "parallel_loso: $1 needs a value" >&2; exit 2; }; }
while [ $# -gt 0 ]; do
  case $1 in
    --hosts) value "$@"; HOSTS=$2; shift 2 ;;
    --out) value "$@"; OUT=$2; shift 2 ;;
    --folds) value "$@"; FOLDS=$2; shift 2 ;;
    --jobs) value "$@"; JOBS=$2; shift 2 ;;
    --threads) value "$@"; THREADS=$2; shift 2 ;;
    --ahmsa) value "$@"; AHMSA_BIN=$2; shift 2 ;;
    --resume-failed) RESUME=(--resume-failed); shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
    --) shift; break ;;
    *) echo "parallel_loso: unknown option $1 (the ahmsa train options go after --)" >&2; exit 2 ;;
  esac
done
[ -n "$HOSTS" ] && [ -n "$OUT" ] || { echo "parallel_loso: --hosts FILE and --out RUN are required" >&2; exit 2; }
[[ $FOLDS =~ ^([0-9]+)-([0-9]+)$ ]] || { echo "parallel_loso: --folds: '$FOLDS' is not A-B" >&2; exit 2; }
command -v parallel >/dev/null || { echo "parallel_loso: GNU parallel is not installed (apt-get install parallel)" >&2; exit 2; }
if [ -z "$AHMSA_BIN" ]; then AHMSA_BIN=$(command -v ahmsa || true); fi
[ -n "$AHMSA_BIN" ] && [ -x "$AHMSA_BIN" ] || { echo "parallel_loso: no ahmsa binary (give --ahmsa PATH or set AHMSA)" >&2; exit 2; }
AHMSA_BIN=$(cd "$(dirname "$AHMSA_BIN")" && pwd)/$(basename "$AHMSA_BIN")
mkdir -p "$OUT/parallel"
OUT=$(cd "$OUT" && pwd)
# The options are checked once here (nothing is trained), not in every job.
"$AHMSA_BIN" train --out "$OUT" "$@" --write-config "$OUT/parallel/run.toml" >/dev/null

# -q quotes every argument for the remote shell (a --model-config value holds ';').
seq "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" |
  parallel --sshloginfile "$HOSTS" --jobs "$JOBS" --joblog "$OUT/parallel/joblog" "${RESUME[@]}" \
    --results "$OUT/parallel/fold_{}" -q "$AHMSA_BIN" train --config "$OUT/parallel/run.toml" --folds {} --threads "$THREADS" --quiet ||
  echo "parallel_loso: some folds failed (RUN/parallel/joblog, RUN/parallel/fold_K/); rerun with --resume-failed" >&2
"$AHMSA_BIN" report "$OUT"
