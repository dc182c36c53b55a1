"""Exemplar synthesis: copy real texture from a picture with a PatchMatch field and patch voting.

Public API:
  complete(image, hole, source=None, guide=None, weight=None, wrap=False, seed=0, settings=Settings())
      fills a hole with patches of the same image (object removal, outpainting, tileable repair).
  Settings: the patch size, iteration counts, confidence decay and guidance weight.
"""
from .completion import Settings, complete

__all__ = ["Settings", "complete"]
