"""codecbench: an honest benchmark for neural and classic audio codecs.

The import package is ``bench``; the distribution is ``codecbench``.
"""

__version__ = "0.1.0"
