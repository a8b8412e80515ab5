"""Sub-center ArcFace head: K centres per class, the nearest one takes the margin."""

import numpy as np
from keras import ops

from tfface.api_export import tfface_export
from tfface.layers.arcface import ArcFace


@tfface_export("tfface.layers.SubCenterArcFace")
class SubCenterArcFace(ArcFace):
    """ArcFace over K sub-centres per class: cos θ_j = max_k cos θ_{j,k}.

    Each class j owns K weight vectors W_{j,1..K} (columns j·K + k of `kernel` [D, C·K],
    insightface's layout). A sample needs to be close to one of them only, so noisy or
    atypical faces of a class gather at non-dominant sub-centres instead of pulling the
    dominant one away from the clean faces. The target logit is ArcFace's on the nearest
    sub-centre, s · cos(θ_y + m) with the fallback past θ_y = π − m (or `easy_margin`),
    and every other logit is s · max_k cos θ_{j,k}; inference logits too.

    **Dropping noisy samples** (the paper's second step). After training, most clean
    samples of a class sit at one *dominant* sub-centre; samples far from it are noisy:

    1. `subcenter_counts(features, labels)` [C, K]: how many samples of each class are
       nearest to each sub-centre. Sum the counts over batches of the whole training
       set; `numpy.argmax(counts, axis=1)` is the dominant sub-centre of each class
       (`dominant_subcenters(features, labels)` does both for data that fits in memory).
    2. `noisy_sample_mask(features, labels, dominant)` [N] is True where the angle between
       a sample and its class's dominant sub-centre is >= `max_angle` (75° in the paper;
       insightface's `drop.py` keeps cos > cos 75°). Drop those samples; a class whose
       samples are all dropped disappears from the cleaned set (`drop.py` renumbers the
       remaining classes).
    3. Retrain a plain `ArcFace` on the cleaned data (insightface) or start it from the
       dominant sub-centres, `dominant_kernel(dominant)` [D, C].

    These methods take features (normalised or not) and labels as arrays and return NumPy
    arrays; they read the current `kernel` and do not change it.

    Args:
        num_classes: int >= 1, number of identities C.
        sub_centers: int >= 1, K. Defaults to `3` (the paper's choice).
        scale: float > 0, s. Defaults to `64.0`.
        margin: float in [0, π/2], m. Defaults to `0.5`.
        easy_margin: bool. Defaults to `False`.
        kernel_initializer: initializer for `W` [D, C·K]. Defaults to `"glorot_uniform"`.
        kernel_regularizer: optional regularizer for `W`. Defaults to `None`.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `[embeddings, labels]` → float32 training logits [B, C];
            `embeddings` → float32 s · max_k cos θ_{j,k} [B, C] for inference.
        training: unused.

    Example:

    >>> import numpy as np
    >>> head = SubCenterArcFace(num_classes=1, sub_centers=2)
    >>> head.build((None, 2))
    >>> _ = head.kernel.assign(np.eye(2, dtype="float32"))  # class 0: the x and y axes
    >>> x = np.array([[1.0, 0.1], [1.0, -0.2], [0.0, 1.0]], "float32")
    >>> labels = np.zeros(3, "int64")
    >>> head.subcenter_counts(x, labels)
    array([[2, 1]])
    >>> head.noisy_sample_mask(x, labels)  # 90° from the dominant x-axis
    array([False, False,  True])

    Reference:
        Deng et al., "Sub-center ArcFace: Boosting Face Recognition by Large-scale Noisy
        Web Faces", ECCV 2020; insightface `recognition/SubCenter-ArcFace` (README: K = 3,
        drop > 75°; `drop.py`).
    """

    def __init__(
        self,
        num_classes,
        sub_centers=3,
        scale=64.0,
        margin=0.5,
        easy_margin=False,
        kernel_initializer="glorot_uniform",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(
            num_classes,
            scale=scale,
            margin=margin,
            easy_margin=easy_margin,
            kernel_initializer=kernel_initializer,
            kernel_regularizer=kernel_regularizer,
            **kwargs,
        )
        if isinstance(sub_centers, bool) or not isinstance(sub_centers, int) or sub_centers < 1:
            raise ValueError(
                f"`sub_centers` must be an int >= 1. Received: sub_centers={sub_centers!r}"
            )
        self.sub_centers = sub_centers
        self.centers_per_class = sub_centers

    # --- noisy-sample dropping (NumPy, after training) ------------------------------
    def _unit_subcenters(self, classes):
        """Unit sub-centres [N, K, D] (float64) of the classes [N]; gathers only those."""
        columns = classes[:, None] * self.sub_centers + np.arange(self.sub_centers)  # [N, K]
        w = ops.convert_to_numpy(ops.take(self.kernel, columns.reshape(-1), axis=1))
        w = np.asarray(w, dtype=np.float64).T.reshape(len(classes), self.sub_centers, -1)
        return w / np.maximum(np.linalg.norm(w, axis=-1, keepdims=True), 1e-12)

    def _check(self, features, labels):
        if not self.built:
            raise ValueError(f"{self.name} is not built: call it or `build` it first.")
        features = np.asarray(features, dtype=np.float64)
        labels = np.asarray(labels).reshape(-1)
        if features.ndim != 2 or features.shape[1] != self.kernel.shape[0]:
            raise ValueError(
                f"`features` must have shape [N, {self.kernel.shape[0]}]. "
                f"Received: features shape={features.shape}"
            )
        if labels.shape[0] != features.shape[0] or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(
                f"`labels` must be {features.shape[0]} integers. "
                f"Received: labels shape={labels.shape}, dtype={labels.dtype}"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(
                f"`labels` must be in [0, {self.num_classes}). "
                f"Received: labels in [{labels.min()}, {labels.max()}]"
            )
        norms = np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
        return features / norms, labels

    def _check_dominant(self, dominant):
        dominant = np.asarray(dominant).reshape(-1)
        if dominant.shape != (self.num_classes,) or not np.issubdtype(dominant.dtype, np.integer):
            raise ValueError(
                f"`dominant` must be {self.num_classes} integers. "
                f"Received: dominant shape={dominant.shape}, dtype={dominant.dtype}"
            )
        if dominant.min() < 0 or dominant.max() >= self.sub_centers:
            raise ValueError(
                f"`dominant` must be in [0, {self.sub_centers}). "
                f"Received: dominant in [{dominant.min()}, {dominant.max()}]"
            )
        return dominant

    def subcenter_cosines(self, features, labels):
        """float64 [N, K]: cos between each sample and the K sub-centres of its own class."""
        x, labels = self._check(features, labels)
        return self._own_cosines(x, labels)

    def _own_cosines(self, x, labels):
        return np.einsum("nd,nkd->nk", x, self._unit_subcenters(labels))

    def subcenter_counts(self, features, labels):
        """int64 [C, K]: per class, the number of its samples nearest to each sub-centre.

        Counts of disjoint batches add up, so a dataset larger than memory is counted
        batch by batch and summed.
        """
        x, labels = self._check(features, labels)
        nearest = np.argmax(self._own_cosines(x, labels), axis=1)
        flat = np.bincount(
            labels * self.sub_centers + nearest, minlength=self.num_classes * self.sub_centers
        )
        return flat.reshape(self.num_classes, self.sub_centers).astype(np.int64)

    def dominant_subcenters(self, features, labels):
        """int64 [C]: each class's sub-centre with the most samples (0 for a class without
        samples; ties go to the lower index, as `numpy.argmax`)."""
        return np.argmax(self.subcenter_counts(features, labels), axis=1).astype(np.int64)

    def noisy_sample_mask(self, features, labels, dominant=None, max_angle=75.0):
        """bool [N]: True where a sample is at `max_angle` degrees or more from its class's
        dominant sub-centre. `dominant` [C] defaults to `dominant_subcenters` of these
        same samples; pass the one counted over the whole training set."""
        if not 0 < max_angle <= 180:
            raise ValueError(f"`max_angle` must be in (0, 180]. Received: max_angle={max_angle!r}")
        x, labels = self._check(features, labels)
        if dominant is None:
            dominant = self.dominant_subcenters(features, labels)
        dominant = self._check_dominant(dominant)
        centers = self._unit_subcenters(labels)[np.arange(len(labels)), dominant[labels]]
        cosine = np.sum(x * centers, axis=1)  # cos to the dominant sub-centre
        return ~(cosine > np.cos(np.deg2rad(max_angle)))

    def dominant_kernel(self, dominant):
        """float32 [D, C]: the dominant sub-centre of each class (as trained, not
        normalised), a kernel for `ArcFace(num_classes=C)`."""
        dominant = self._check_dominant(dominant)
        w = ops.convert_to_numpy(self.kernel)
        columns = np.arange(self.num_classes) * self.sub_centers + dominant
        return np.asarray(w[:, columns], dtype=np.float32)

    def get_config(self):
        config = super().get_config()
        config.update({"sub_centers": self.sub_centers})
        return config
