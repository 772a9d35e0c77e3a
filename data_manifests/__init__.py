"""Manifests and the embedded default corpus, shipped with the package as ``bench.data_manifests``.

A package (not only data files) so ``importlib.resources.files("bench.data_manifests")`` finds the
corpus both in an editable checkout and in an installed wheel.
"""
