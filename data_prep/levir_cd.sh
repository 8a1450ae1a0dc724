#!/usr/bin/env bash
# LEVIR-CD → the community 256×256 tile layout with the official train/val/test split.
#
# Get the data (by hand; this script downloads nothing):
#   LEVIR-CD, Chen & Shi, Remote Sensing 2020 — https://justchenhao.github.io/LEVIR/
#   (links to the train/val/test archives; research use only, see the page's terms).
#   Extract the three archives into one folder so that it reads
#     RAW/train/{A,B,label}/train_*.png   445 pairs, 1024×1024 RGB, labels 0/255
#     RAW/val/{A,B,label}/val_*.png        64 pairs
#     RAW/test/{A,B,label}/test_*.png     128 pairs
#
# Result: OUT/{A,B,label}/<name>_<row>_<col>.png (7120/1024/2048 tiles), OUT/list/*.txt,
# OUT/dataset.json (labels 0/255 declared as label_values {0: 0, 255: 1}).
#
# Usage: data_prep/levir_cd.sh [RAW] [OUT] [extra sdrl prep levir flags, e.g. --overwrite]
set -euo pipefail

RAW="${1:-data/raw/LEVIR-CD}"
OUT="${2:-data/levir_cd_256}"
shift $(( $# < 2 ? $# : 2 ))

sdrl prep levir --src "$RAW" --out "$OUT" --tile 256 "$@"
