#!/bin/bash
# Submit a sweep as a SLURM job array of N slices and a merge job that starts when all of them
# succeeded (and is cancelled if one fails). Prints the two job ids.
#
#   slurm/submit_sweep.sh DECK N OUT [isosim sweep arguments ...]
#   slurm/submit_sweep.sh input/xiong_fig2.toml 5 runs/fig2
#   slurm/submit_sweep.sh input/spera2004_montecarlo.toml 20 runs/mc --samples 10000 --seed 1
#   PARTITION=short ACCOUNT=geo NTASKS=4 TIME=01:00:00 slurm/submit_sweep.sh ...
#
# The slices go to OUT.slices/slice-1 ... slice-N, the merged sweep to OUT. Run it from the
# directory the relative paths start from. Sweep arguments must not contain spaces. A slice
# longer than TIME is requeued and continues; submitting the same sweep again continues the
# unfinished slices and skips the finished ones.
# ---- site settings (or set them in the environment) -------------------------------------
PARTITION=${PARTITION:-}                  # sbatch --partition; empty: the site's default
ACCOUNT=${ACCOUNT:-}                      # sbatch --account; empty: none
TIME=${TIME:-04:00:00}                    # time limit of each slice (a longer slice is requeued)
SIGNAL=${SIGNAL:-}                        # the slices' --signal; empty: B:USR1@S, S = TIME/10 (<= 300 s)
NTASKS=${NTASKS:-1}                       # MPI ranks of each slice
MAX_PARALLEL=${MAX_PARALLEL:-}            # at most this many slices at once (--array=1-N%M)
SBATCH_ARGS=${SBATCH_ARGS:-}              # anything else for both sbatch calls, e.g. "--qos=normal"
# MODULES, VENV, LAUNCH, PETSC_ARGS, PROGRESS, MAX_RESTARTS: see array_sweep.sbatch (exported)
# -----------------------------------------------------------------------------------------
set -euo pipefail
if [ $# -lt 3 ]; then
    sed -n '2,15p' "$0" >&2
    exit 2
fi
DECK=$1; NSLICES=$2; OUT=$3; shift 3
case $NSLICES in ''|*[!0-9]*|0) echo "submit_sweep.sh: N must be a positive whole number, not '$NSLICES'" >&2; exit 2;; esac
[ -f "$DECK" ] || { echo "submit_sweep.sh: no deck $DECK" >&2; exit 2; }
if [ -e "$OUT/summary.json" ] && [[ " ${MERGE_ARGS:-} " != *" --force "* ]]; then
    echo "submit_sweep.sh: $OUT already holds a sweep; remove it, choose another OUT or set MERGE_ARGS=--force" >&2
    exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# seconds of a SLURM time limit (M, M:S, H:M:S, D-H, D-H:M, D-H:M:S); nothing if not one of these
limit_seconds() {
    local t=$1 d=0 f
    if [[ $t =~ ^([0-9]+)-([0-9:]+)$ ]]; then d=${BASH_REMATCH[1]}; t=${BASH_REMATCH[2]}; fi
    [[ $t =~ ^[0-9]+(:[0-9]+){0,2}$ ]] || return 0
    IFS=: read -r -a f <<< "$t"
    if [[ $1 == *-* ]]; then                     # D-H[:M[:S]]
        echo $(( ((10#$d * 24 + 10#${f[0]}) * 60 + 10#${f[1]:-0}) * 60 + 10#${f[2]:-0} ))
    else case ${#f[@]} in                        # M, M:S, H:M:S
        1) echo $(( 10#${f[0]} * 60 )) ;;
        2) echo $(( 10#${f[0]} * 60 + 10#${f[1]} )) ;;
        3) echo $(( (10#${f[0]} * 60 + 10#${f[1]}) * 60 + 10#${f[2]} )) ;;
    esac; fi
}
# USR1 comes between S and S + 30 s before the limit (SLURM's 30 s timer): with the script's
# @300 a limit of a few minutes would be signalled at once, every segment
if [ -z "$SIGNAL" ]; then
    limit=$(limit_seconds "$TIME")
    if [ -n "$limit" ]; then
        s=$(( limit / 10 )); if [ $s -gt 300 ]; then s=300; fi; if [ $s -lt 5 ]; then s=5; fi
        SIGNAL=B:USR1@$s
    fi
fi

common=()
if [ -n "$PARTITION" ]; then common+=(--partition="$PARTITION"); fi
if [ -n "$ACCOUNT" ]; then common+=(--account="$ACCOUNT"); fi
# the jobs read their settings from the environment (commas in --vary values would break
# sbatch --export=VAR=value lists, so everything travels with --export=ALL)
export DECK OUT NSLICES SWEEP_ARGS="$*" WORKDIR="${WORKDIR:-$PWD}"

array=$(sbatch --parsable --export=ALL ${common[@]+"${common[@]}"} $SBATCH_ARGS \
        --array="1-$NSLICES${MAX_PARALLEL:+%$MAX_PARALLEL}" --ntasks="$NTASKS" --time="$TIME" \
        ${SIGNAL:+--signal="$SIGNAL"} \
        "$here/array_sweep.sbatch")
array=${array%%;*}
merge=$(sbatch --parsable --export=ALL ${common[@]+"${common[@]}"} $SBATCH_ARGS \
        --dependency="afterok:$array" --kill-on-invalid-dep=yes "$here/merge_sweep.sbatch")
merge=${merge%%;*}
echo "array job $array: $NSLICES slice(s) of $DECK into $OUT.slices/ (a slice still running at its" \
     "time limit $TIME keeps what it finished on USR1 (${SIGNAL:-B:USR1@300}), is requeued and continues)"
echo "merge job $merge: after all slices succeed, into $OUT"
