#!/usr/bin/env bash
# Build dataset folders from one before/after raster pair with `sdrl prep pairs`.
#
# Usage: data_prep/pairs_example.sh BEFORE.tif AFTER.tif OUT_ROOT [LABELS.tif|.geojson]
#
# Writes, under OUT_ROOT:
#   kmeans/   pretraining pairs with 8 k-means clusters fitted jointly on both dates
#   indices/  pretraining pairs with other/vegetation/water/built_up masks (needs red, green,
#             NIR and optionally SWIR-1 band names; rename bands with --band-names B02,B03,...)
#   labels/   pretraining pairs with the semantic labels of the first date (if LABELS is given)
# For a change-labelled pair (0 unchanged, 1 changed, 255 unlabelled) use instead:
#   sdrl prep pairs --before A.tif --after B.tif --labels change.tif --kind change --out DIR
set -euo pipefail

if [[ $# -lt 3 ]]; then
    sed -n 4p "$0" >&2
    exit 2
fi
before=$1 after=$2 root=$3 labels=${4:-}
common=(--before "$before" --after "$after" --tile 256 --val-fraction 0.1 --seed 0)

sdrl prep pairs "${common[@]}" --masks kmeans:8 --out "$root/kmeans"
sdrl prep pairs "${common[@]}" --masks indices --out "$root/indices" \
    || echo "indices skipped: the bands need names (see --band-names)" >&2
if [[ -n "$labels" ]]; then
    sdrl prep pairs "${common[@]}" --labels "$labels" --out "$root/labels"
fi
