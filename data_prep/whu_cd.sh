#!/usr/bin/env bash
# WHU-CD (WHU building change detection, Christchurch 2012/2016) → 256×256 tiles.
#
# Get the data (by hand; this script downloads nothing):
#   WHU Building Dataset, Ji, Wei & Lu, IEEE TGRS 2019 —
#   http://gpcv.whu.edu.cn/data/building_dataset.html ("Building change detection dataset").
#   Research use only, see the page's terms.
#
# Two layouts are accepted:
#   1. The whole-image release (32507×15354 px, 0.3 m):
#        RAW/before/before.tif  RAW/after/after.tif  "RAW/change label/change_label.tif"
#      (other names: --before/--after/--label, relative to RAW). Tiles are non-overlapping;
#      the right/bottom remainder under one tile is dropped, tiles black in a date are skipped.
#      There is NO official split: tiles get a spatially blocked 80/10/10 split (blocks of
#      8×8 tiles, seeded permutation; --split-block, --val-fraction, --test-fraction, --seed), recorded in dataset.json.
#   2. A redistribution already cut into tiles, in split folders like LEVIR-CD:
#        RAW/{train,val,test}/{A,B,label}/*.png   (tiles of any size ≥ 256 are cut to 256)
#      A folder RAW/{A,B,label}/ without split folders needs --split NAME.
#
# Usage: data_prep/whu_cd.sh [RAW] [OUT] [extra sdrl prep whu flags]
set -euo pipefail

RAW="${1:-data/raw/WHU-CD}"
OUT="${2:-data/whu_cd_256}"
shift $(( $# < 2 ? $# : 2 ))

sdrl prep whu --src "$RAW" --out "$OUT" --tile 256 "$@"
