"""The spec's discriminators, built in code with readable layer names.

``patchgan`` is the spec's network; ``pix2pix`` wraps it with the chapter's
minibatch-discrimination head. Keras is imported inside the functions so
that importing this module (and ``edgekit --help``) stays fast.
"""

from typing import TYPE_CHECKING

from edgekit.errors import ModelError

if TYPE_CHECKING:
    import keras

BUILTIN_MODELS = ("patchgan", "pix2pix")

FILTERS = (64, 128, 256, 512, 512, 512, 512, 512)
KERNEL_SIZE = 4
STRIDES = 2
LEAKY_SLOPE = 0.2
HEAD_KERNELS = 100
HEAD_KERNEL_DIM = 5

DEFAULT_INPUT_SHAPE = (256, 256, 1)


class _Seeds:
    """Hands out one distinct initializer seed per layer, in build order.

    Seeded initializers make two builds with the same seed identical
    without touching Keras's or numpy's global random state.
    """

    def __init__(self, seed: int) -> None:
        self.next_seed = seed * 1000

    def glorot(self) -> "keras.initializers.Initializer":
        import keras

        self.next_seed += 1
        return keras.initializers.GlorotUniform(seed=self.next_seed)


def _check_arguments(seed: int, input_shape: tuple[int, ...]) -> None:
    if not isinstance(seed, int) or seed < 0:
        raise ModelError(f"the seed must be a whole number >= 0, got {seed!r}")

    if len(input_shape) != 3 or any(int(d) < 1 for d in input_shape):
        raise ModelError(
            "the input shape must be (height, width, channels) with positive "
            f"sizes, got {tuple(input_shape)}"
        )


def _trunk(image, seeds: _Seeds):
    """Eight conv blocks and the flatten; returns the 512-d features tensor."""
    import keras
    from keras import layers

    x = image
    for block, filters in enumerate(FILTERS, start=1):
        x = layers.Conv2D(
            filters,
            KERNEL_SIZE,
            strides=STRIDES,
            padding="same",
            kernel_initializer=seeds.glorot(),
            name=f"block{block}_conv",
        )(x)

        # The spec normalises every block but the first.
        if block > 1:
            x = layers.BatchNormalization(name=f"block{block}_bn")(x)

        x = layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=f"block{block}_lrelu")(x)

    return keras.layers.Flatten(name="features")(x)


def build_patchgan(
    *,
    seed: int = 0,
    input_shape: tuple[int, int, int] = DEFAULT_INPUT_SHAPE,
    batch_size: int | None = 1,
) -> "keras.Model":
    """Build the spec's PatchGAN discriminator with seeded weights.

    Args:
        seed: seed of the initialisers; equal seeds give equal weights.
        input_shape: (height, width, channels) of one image.
        batch_size: static batch size, or None for a dynamic batch.

    Returns:
        A model with input ``image`` and outputs ``verdict`` (the softmax
        over the two classes) and ``features`` (the flattened features).
    """
    import keras

    _check_arguments(seed, input_shape)
    seeds = _Seeds(seed)

    image = keras.Input(shape=tuple(input_shape), batch_size=batch_size, name="image")
    features = _trunk(image, seeds)
    verdict = keras.layers.Dense(
        2, activation="softmax", kernel_initializer=seeds.glorot(), name="verdict"
    )(features)

    return keras.Model(image, [verdict, features], name="patchgan")


def build_pix2pix(
    *,
    seed: int = 0,
    input_shape: tuple[int, int, int] = DEFAULT_INPUT_SHAPE,
    batch_size: int | None = 1,
) -> "keras.Model":
    """Build the chapter's full discriminator: PatchGAN plus minibatch head.

    The PatchGAN's softmax (layer ``patch_verdict``) and a minibatch
    discrimination of its features are concatenated and fed to the final
    Dense(2, softmax), ``verdict``. At batch size 1 the minibatch features are
    a constant vector of ones (see ``MinibatchDiscrimination``), so the
    verdict is a fixed function of the PatchGAN softmax alone.

    Args:
        seed: seed of the initialisers; equal seeds give equal weights.
        input_shape: (height, width, channels) of one image.
        batch_size: static batch size, or None for a dynamic batch.

    Returns:
        A model with input ``image`` and outputs ``verdict`` and ``features``.
    """
    import keras
    from keras import layers

    from edgekit.models.minibatch import MinibatchDiscrimination

    _check_arguments(seed, input_shape)
    seeds = _Seeds(seed)

    image = keras.Input(shape=tuple(input_shape), batch_size=batch_size, name="image")
    features = _trunk(image, seeds)
    patch_verdict = layers.Dense(
        2, activation="softmax", kernel_initializer=seeds.glorot(), name="patch_verdict"
    )(features)

    projected = layers.Dense(
        HEAD_KERNELS * HEAD_KERNEL_DIM,
        use_bias=False,
        kernel_initializer=seeds.glorot(),
        name="minibatch_dense",
    )(features)
    projected = layers.Reshape(
        (HEAD_KERNELS, HEAD_KERNEL_DIM), name="minibatch_reshape"
    )(projected)
    closeness = MinibatchDiscrimination(
        HEAD_KERNELS, HEAD_KERNEL_DIM, name="minibatch_l1"
    )(projected)

    joined = layers.Concatenate(name="head_concat")([closeness, patch_verdict])
    verdict = layers.Dense(
        2, activation="softmax", kernel_initializer=seeds.glorot(), name="verdict"
    )(joined)

    return keras.Model(image, [verdict, features], name="pix2pix")


def build_model(
    name: str = "patchgan",
    *,
    seed: int = 0,
    input_shape: tuple[int, int, int] = DEFAULT_INPUT_SHAPE,
    batch_size: int | None = 1,
) -> "keras.Model":
    """Build a built-in model, freshly initialised from ``seed``.

    The BatchNorm statistics are Keras's defaults; ``resolve_model`` adds the
    demo statistics measured on calibration photographs.

    Args:
        name: one of ``BUILTIN_MODELS``.
        seed: seed of the initialisers.
        input_shape: (height, width, channels) of one image.
        batch_size: static batch size, or None for a dynamic batch.

    Raises:
        ModelError: for an unknown name or a bad seed or shape.
    """
    builders = {"patchgan": build_patchgan, "pix2pix": build_pix2pix}
    if name not in builders:
        raise ModelError(
            f"unknown model {name!r}; expected one of {', '.join(BUILTIN_MODELS)} "
            "or a path to a .keras file"
        )

    return builders[name](seed=seed, input_shape=input_shape, batch_size=batch_size)
