"""Recipes that build ⚑ dataset folders from real rasters (``sdrl prep``)."""
