"""Sfumato: a local diffusion engine for image editors."""
__version__ = "0.1.0"
PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 8192 * 8192 * 4 * 4 + 4096  # one frame: an 8192x8192 RGBA f32 array and a little more
