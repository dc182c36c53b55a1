"""The model zoo: other people's restoration checkpoints (Real-ESRGAN, DnCNN, ...) run by the engine.

Architectures are detected and built by spandrel, an optional dependency (the `zoo` extra):
without it the engine starts as usual and names the extra when a zoo model is asked for.
"""
