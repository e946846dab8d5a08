#!/usr/bin/env bash
# The bbc_selection study: 5 seeds of BBC News, 10 -> 200 labels in rounds of 10, every group
# below, then the reports. About 30 min on an idle 2-core machine with a warm embedding cache.
#   ALRUN_DATA_DIR=../shared/data bash experiments/bbc_selection/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-outputs/multirun/bbc_selection}
ALRUN=${ALRUN:-.venv/bin/alrun}
REPORT=${REPORT:-.venv/bin/alrun-report}
OLD3='[tfidf_logreg,minilm_embed_logreg,minilm_embed_centroid]'
sweep() {  # sweep NAME OVERRIDES...: 5 seeds, two jobs side by side, one thread each
  local name=$1
  shift
  if [[ -n "${ONLY:-}" && " $ONLY " != *" $name "* ]]; then return; fi  # ONLY="a b": just those
  "$ALRUN" -m "$@" seed=0,1,2,3,4 logger=none threads=1 hydra/launcher=joblib \
    hydra.launcher.n_jobs=2 "hydra.sweep.dir=$OUT/$name"
}
# today's (before this study) default: 3 candidates, highest CV accuracy kept, random start, margin
sweep before "candidates=$OLD3" selection.rank_by=metric selection.cv_repeats=1 \
  loop.initial_strategy=random strategy=margin
# the same 3 candidates and loop with the new selection (out-of-fold log-loss, CV repeats)
sweep new_selection "candidates=$OLD3" loop.initial_strategy=random strategy=margin
# the new default: 4 candidates (+ TF-IDF/embedding LR, + soft vote), typiclust, diverse margin
sweep default
# every single candidate alone, same start and strategy as the default
sweep singles 'candidates=choice([minilm_tfidf_logreg],[minilm_embed_logreg],[minilm_embed_centroid],[tfidf_logreg])'
# the default's parts one at a time
sweep random_margin loop.initial_strategy=random strategy=margin
sweep random_diverse loop.initial_strategy=random strategy=diverse_margin
sweep typiclust_margin loop.initial_strategy=typiclust strategy=margin
sweep brier selection.rank_by=brier
sweep incumbent selection.switch_confidence=0.9
sweep one_cv selection.cv_repeats=1
sweep vote_weights models.ensemble.weights=equal
# embeddings in float32 instead of bfloat16 (what `precision: auto` picks on a CPU without
# native bfloat16)
sweep float32 models.minilm_tfidf_logreg.precision=float32 \
  models.minilm_embed_logreg.precision=float32 models.minilm_embed_centroid.precision=float32 \
  features.precision=float32

R=experiments/bbc_selection
AT=--at=30,50,100,150,200
"$REPORT" "$OUT/before" "$OUT/new_selection" "$OUT/default" "$OUT/singles" "$AT" \
  --floor-from 30 --out "$R/main" --title "BBC News: selection and candidates (5 seeds)"
"$REPORT" "$OUT/default" "$OUT/random_margin" "$OUT/random_diverse" "$OUT/typiclust_margin" \
  "$AT" --floor-from 30 \
  --out "$R/start_and_strategy" --title "BBC News: cold start x query strategy (5 seeds)"
"$REPORT" "$OUT/default" "$OUT/brier" "$OUT/incumbent" "$OUT/one_cv" "$OUT/vote_weights" \
  "$AT" --floor-from 30 \
  --out "$R/selection_rules" --title "BBC News: selection rules (5 seeds)"
"$REPORT" "$OUT/default" "$OUT/float32" "$AT" --floor-from 30 --out "$R/precision" \
  --title "BBC News: bfloat16 vs float32 embeddings (5 seeds)"

# experiments/bbc_strategies on this code (its README)
if [[ -z "${ONLY:-}" || " $ONLY " == *" bbc_strategies "* ]]; then
  "$ALRUN" -m experiment=bbc_strategies logger=none threads=1 hydra/launcher=joblib \
    hydra.launcher.n_jobs=2 "hydra.sweep.dir=outputs/multirun/bbc_strategies_joblib"
fi
"$REPORT" outputs/multirun/bbc_strategies_joblib --at 30,50,100,150,200 --floor-from 30 \
  --out experiments/bbc_strategies --title "BBC News: query strategies (6 strategies x 3 seeds)"
