"""The minibatch-discrimination kernel of the chapter's pix2pix discriminator.

This module imports Keras at module level, so only functions that already
need Keras import it; ``edgekit.models`` itself stays light.
"""

import keras


@keras.saving.register_keras_serializable(package="edgekit")
class MinibatchDiscrimination(keras.layers.Layer):
    """L1 closeness of each sample to the rest of its batch, per kernel.

    The input is ``(N, kernels, kernel_dim)``: a projection of each sample's
    features, reshaped. For sample ``i`` and kernel ``b`` the output is the
    sum over every sample ``j`` of the batch of
    ``exp(-sum_k |M[i, b, k] - M[j, b, k]|)``. The layer has no weights; the
    projection is the ordinary ``Dense`` before it.

    At batch size 1 the sum has a single term, the sample itself, whose
    distance is 0, so every output is exactly 1. The head then adds a
    constant to the final Dense and the verdict depends only on the
    PatchGAN softmax. The head only tells batches apart when it sees several
    samples at once, which edge inference (batch 1) never does.

    Args:
        kernels: number of kernels, the output width.
        kernel_dim: length of each kernel's projection.
    """

    def __init__(self, kernels: int = 100, kernel_dim: int = 5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.kernels = kernels
        self.kernel_dim = kernel_dim

    def call(self, inputs):
        # Broadcast (N, 1, B, K) against (1, N, B, K) to get every pair.
        pairs = keras.ops.expand_dims(inputs, 1) - keras.ops.expand_dims(inputs, 0)
        distance = keras.ops.sum(keras.ops.abs(pairs), axis=-1)
        return keras.ops.sum(keras.ops.exp(-distance), axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1])

    def get_config(self) -> dict:
        config = super().get_config()
        config.update({"kernels": self.kernels, "kernel_dim": self.kernel_dim})
        return config
