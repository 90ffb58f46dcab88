"""edgekit: put a Keras model on edge hardware with proof that it still works.

The package has two sides. The host side (``edgekit.models``,
``edgekit.export``) needs TensorFlow and imports it lazily, inside the
functions that use it. The device side (``edgekit.bundle``,
``edgekit.runners``, ``edgekit.parity``, ``edgekit.latency``) needs only
numpy and the runtimes it benches.
"""

__version__ = "0.1.0"
