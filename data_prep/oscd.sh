#!/usr/bin/env bash
# OSCD (Onera Satellite Change Detection, Sentinel-2) → one 13-band GeoTIFF per date and city.
#
# Get the data (by hand; this script downloads nothing):
#   Daudt, Le Saux, Boulch & Gousseau, IGARSS 2018 — https://rcdaudt.github.io/oscd/
#   (also on IEEE DataPort: "OSCD - Onera Satellite Change Detection dataset").
#   Extract the three archives into one folder RAW:
#     "RAW/Onera Satellite Change Detection dataset - Images"/{train.txt,test.txt,<city>/imgs_1,...}
#     "RAW/Onera Satellite Change Detection dataset - Train Labels"/<city>/cm/<city>-cm.tif
#     "RAW/Onera Satellite Change Detection dataset - Test Labels"/<city>/cm/<city>-cm.tif
#   (short names images/, train_labels/, test_labels/ work too; or --images, --train-labels,
#   --test-labels relative to RAW).
#
# Result: OUT/{A,B}/<city>.tif (B01..B12 + B8A in S2 order on the 10 m grid, 20/60 m bands
# bilinear), OUT/label/<city>.tif (0 unchanged, 1 changed, 255 ignore), list/train.txt,
# list/test.txt, list/unlabelled.txt (cities without labels: images only). Add --tile 256 to
# cut the cities into tiles.
#
# The pretraining set (every city's pair, no change labels; semantic masks of both dates from
# spectral indices, or finer regions with --masks kmeans:16) is a second call:
#   data_prep/oscd.sh RAW data/oscd_pretrain --pretrain
#
# Usage: data_prep/oscd.sh [RAW] [OUT] [extra sdrl prep oscd flags]
set -euo pipefail

RAW="${1:-data/raw/OSCD}"
OUT="${2:-data/oscd}"
shift $(( $# < 2 ? $# : 2 ))

sdrl prep oscd --src "$RAW" --out "$OUT" "$@"
