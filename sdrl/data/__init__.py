"""Rasters, dataset folders, masks, augmentation, the data engine and ``sdrl prep`` recipes.

Submodules are imported where they are used (``sdrl.data.io``, ``sdrl.data.datasets``...), so
that importing one of them does not pull in the others.
"""
