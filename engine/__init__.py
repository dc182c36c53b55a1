"""Sfumato: a local diffusion engine for image editors."""
__version__ = "0.1.0"
PROTOCOL_VERSION = 1
DEFAULT_ADDRESS = "tcp://127.0.0.1:5555"  # where the engine serves and clients look, unless told otherwise
# ZeroMQ heartbeats on both ends of a connection: a peer silent past the timeout is dropped.
HEARTBEAT_IVL_MS = 2000
HEARTBEAT_TIMEOUT_MS = 6000
MAX_MESSAGE_BYTES = 8192 * 8192 * 4 * 4 + 4096  # one frame: an 8192x8192 RGBA f32 array and a little more
MAX_LOADED_MODELS = 4  # models an engine keeps loaded at once; the least recently used beyond it are unloaded
