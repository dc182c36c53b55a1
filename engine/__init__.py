"""Sfumato: a local diffusion engine for image editors."""
__version__ = "0.1.0"
PROTOCOL_VERSION = 1
