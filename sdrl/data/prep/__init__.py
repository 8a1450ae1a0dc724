"""Recipes that build dataset folders from real rasters (``sdrl prep``).

One module per recipe (:mod:`~sdrl.data.prep.levir`, :mod:`~sdrl.data.prep.whu`,
:mod:`~sdrl.data.prep.oscd`, :mod:`~sdrl.data.prep.pairs`), the spatially blocked split they
share (:mod:`~sdrl.data.prep.splits`) and their result type (:mod:`~sdrl.data.prep.result`).
"""
