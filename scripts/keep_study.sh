#!/usr/bin/env bash
# Copies the finished runs of a study to DEST without their checkpoints, models, logs or TREC run files (~1.5 MB a
# run instead of ~1 GB), so a study run in parts over machines that do not keep files can be continued elsewhere:
#   bash scripts/keep_study.sh studies/cpu-study docs/findings/cpu-study
#   cp -r docs/findings/cpu-study studies/cpu-study && polyret compare configs/cpu-study.yaml   # skips what is kept
# Unfinished runs are left out: they need their checkpoints, and rerun from the start where these are gone.
# `polyret report` and scripts/findings.py read DEST as they read the study (results, per-query files, records).
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: bash scripts/keep_study.sh STUDY_DIR DEST" >&2
  exit 2
fi
source_dir=${1%/}
dest=${2%/}
if [ ! -f "$source_dir/study.json" ]; then
  echo "error: $source_dir/study.json not found: give a study directory written by polyret compare" >&2
  exit 2
fi
command -v rsync >/dev/null || { echo "error: rsync not found (apt-get install rsync)" >&2; exit 2; }
mkdir -p "$dest/runs"
cp "$source_dir/study.json" "$source_dir/config.yaml" "$dest/"
kept=0
for run in "$source_dir"/runs/*/; do
  [ -f "$run/done.json" ] || continue
  rsync -a --prune-empty-dirs --exclude='train/' --exclude='model/' --include='*/' \
    --include='run.json' --include='done.json' --include='train.done.json' \
    --include='results/*.json' --include='results/*.npz' --exclude='*' "$run" "$dest/runs/$(basename "$run")/"
  kept=$((kept + 1))
done
echo "kept $kept finished run(s) of $source_dir in $dest ($(du -sh "$dest" | cut -f1))"
