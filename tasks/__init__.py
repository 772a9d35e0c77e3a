"""Task plugins. Installed as ``bench.tasks``; each module registers its task on import."""
