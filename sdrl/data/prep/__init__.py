"""Recipes that build dataset folders from real rasters (``sdrl prep``).

One module per recipe (:mod:`~sdrl.data.prep.levir`, :mod:`~sdrl.data.prep.whu`,
:mod:`~sdrl.data.prep.oscd` and :mod:`~sdrl.data.prep.oscd_pretrain`,
:mod:`~sdrl.data.prep.pairs` for one pair and :mod:`~sdrl.data.prep.collection` for many),
the pieces a collection is made of (:mod:`~sdrl.data.prep.sources`: CSV and folders of pairs;
:mod:`~sdrl.data.prep.scene`: one pair masked and tiled; :mod:`~sdrl.data.prep.parallel`:
scenes in worker processes; :mod:`~sdrl.data.prep.merge`: one split and ``dataset.json``),
the spatially blocked split they share (:mod:`~sdrl.data.prep.splits`) and their result
type (:mod:`~sdrl.data.prep.result`).
"""
