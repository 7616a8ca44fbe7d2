"""repalign: the reference replication suite for representation-alignment papers.

Subpackages: ``data`` (dataset registry), ``metrics`` (every measure of the five
papers, as pure tensor functions), ``models``, ``train`` (the one training loop),
``experiments`` (one function per figure/table), ``plots`` and ``targets``.
"""

__version__ = "0.1.0"
