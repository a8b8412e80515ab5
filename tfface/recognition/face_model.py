"""`FaceModel`: an embedding model together with the crop it expects.

Loads a tfface SavedModel (a version directory, or a TF Serving model directory whose
newest numeric version is used), a `.keras` file, an in-memory `keras.Model` or a
pretrained name, and reads the crop size, alignment template, 1:1 threshold and weights
fingerprint that travel with it (`tfface.model_metadata`). A model without metadata
gets its input size from its input shape and the ArcFace template, and has no threshold.
"""

import os

import numpy as np
from PIL import Image

from tfface import model_metadata
from tfface.recognition.model_source import DEFAULT_MODEL
from tfface.recognition.model_source import ModelLoadError
from tfface.recognition.model_source import resolve_model_argument
from tfface.unit_vectors import l2_normalize_rows

_BATCH = 32


def _load_pretrained(name):
    from tfface.models import pretrained

    # A missing weights package is PretrainedWeightsError (a RuntimeError naming the pip
    # command); an unknown name is a ValueError listing the known ones.
    try:
        return pretrained.load_pretrained(name)
    except (ValueError, pretrained.PretrainedWeightsError) as e:
        raise ModelLoadError(f"{name!r}: {e}") from e


class FaceModel:
    """An embedding model and the crop it was trained on.

    Args:
        model: a tfface SavedModel directory, a `.keras` file, a pretrained model name
            (`tfface.models.load_pretrained`) or a built `keras.Model` mapping float32
            pixels [N, S, S, 3] in 0–255 to embeddings [N, D].
        image_size: crop side; only for models without metadata whose input size is not
            fixed.
        template: "arcface" or [5, 2] crop points; overrides the metadata's template (for
            models without metadata, the default is "arcface").
        threshold: 1:1 cosine threshold; overrides the metadata's.

    Attributes:
        image_size, template (float64 [5, 2]), threshold (float or None), embedding_size,
        name, fingerprint, source ("savedmodel" | "keras" | "pretrained" | "object"),
        quality_scores (a tuple: `("embedding_norm",)` for a model that provides the
        feature norm ‖x‖ as a quality score, AdaFace/MagFace models; else empty).
    """

    def __init__(self, model=DEFAULT_MODEL, image_size=None, template=None, threshold=None):
        import keras

        metadata = None
        self._signature = None
        self._quality_signature = None
        self._keras_model = None
        if isinstance(model, keras.Model):
            self.source = "object"
            self._keras_model = model
            metadata = getattr(model, "tfface_metadata", None)
            metadata = None if metadata is None else dict(metadata)
            name = model.name
        else:
            self.source, resolved = resolve_model_argument(model)
            name = os.path.basename(os.path.normpath(resolved))
            if self.source == "savedmodel":
                metadata = model_metadata.read_saved_model_metadata(resolved)
                self._load_saved_model(resolved)
                if metadata is not None:
                    name = metadata["name"]
                else:
                    parent = os.path.basename(os.path.dirname(os.path.normpath(resolved)))
                    name = f"{parent}/{name}" if name.isdigit() else name
            elif self.source == "keras":
                metadata = model_metadata.read_keras_metadata(resolved)
                from tfface.models.keras_objects import register_keras_objects

                register_keras_objects()  # tfface layers load without custom_objects

                try:
                    self._keras_model = keras.saving.load_model(resolved, compile=False)
                except (ValueError, OSError, TypeError) as e:
                    raise ModelLoadError(f"{resolved}: cannot load ({e}).") from e
                name = os.path.splitext(name)[0]
            else:
                self._keras_model = _load_pretrained(resolved)
                metadata = getattr(self._keras_model, "tfface_metadata", None)
                metadata = None if metadata is None else dict(metadata)
                name = resolved
        if metadata is not None and not isinstance(metadata.get("template"), dict):
            raise ModelLoadError(f"{name}: tfface_metadata has no template.")
        self._init_from(metadata, name, image_size, template, threshold)

    def _load_saved_model(self, path):
        import tensorflow as tf

        try:
            loaded = tf.saved_model.load(path)
        except (OSError, ValueError, tf.errors.OpError) as e:
            raise ModelLoadError(f"{path}: cannot load SavedModel ({e}).") from e
        if "serving_default" not in loaded.signatures:
            raise ModelLoadError(f"{path}: SavedModel has no serving_default signature.")
        self._loaded = loaded
        self._signature = loaded.signatures["serving_default"]
        self._input_name = next(iter(self._signature.structured_input_signature[1]))
        self._output_name = next(iter(self._signature.structured_outputs))
        self._quality_signature = loaded.signatures.get("embed_quality")

    def _input_size(self):
        if self._signature is not None:
            spec = self._signature.structured_input_signature[1][self._input_name]
            shape = spec.shape.as_list()
        else:
            try:
                shape = list(self._keras_model.input_shape)
            except (AttributeError, ValueError):
                return None
        if len(shape) == 4 and shape[1] is not None and shape[1] == shape[2]:
            return int(shape[1])
        return None

    def _init_from(self, metadata, name, image_size, template, threshold):
        input_size = self._input_size()
        if metadata is not None:
            metadata = model_metadata.check_metadata(metadata, f"{name} metadata")
            size = metadata["image_size"]
            if image_size is not None and image_size != size:
                raise ValueError(
                    f"`image_size` disagrees with the model's metadata ({size}). "
                    f"Received: image_size={image_size}"
                )
        else:
            size = image_size or input_size
            if size is None:
                raise ModelLoadError(
                    f"{name}: the model has no tfface metadata and no fixed input size; pass "
                    "`image_size`."
                )
        if input_size is not None and input_size != size:
            raise ModelLoadError(
                f"{name}: metadata says {size}-px crops but the model takes {input_size} px."
            )
        self.image_size = int(size)
        self.quality_scores = self._init_quality(metadata, name)
        if self._keras_model is not None:
            model = self._keras_model
            if self.quality_scores:
                from tfface.export.saved_model import features_model

                model = features_model(model)
            self._compiled = self._compile(model, self.image_size)
        if template is not None:
            self.template = model_metadata.template_points(template, self.image_size)
            self.template_name = template if isinstance(template, str) else "custom"
        elif metadata is not None:
            self.template = metadata["template"]["points"]
            self.template_name = metadata["template"]["name"]
        else:
            self.template = model_metadata.template_points("arcface", self.image_size)
            self.template_name = "arcface"
        if threshold is None and metadata is not None:
            threshold = metadata.get("threshold")
        if threshold is None and self._signature is not None:
            variable = getattr(self._loaded, "threshold", None)
            threshold = None if variable is None else float(variable.numpy())
        self.threshold = None if threshold is None else float(threshold)
        self.name = metadata["name"] if metadata is not None else name
        probe = self.embed(np.zeros((1, self.image_size, self.image_size, 3), np.uint8))
        self.embedding_size = int(probe.shape[1])
        fingerprint = metadata.get("fingerprint") if metadata is not None else None
        if fingerprint is None:
            variables = (
                getattr(self._loaded, "model_variables", None) or self._loaded.variables
                if self._signature is not None
                else self._keras_model.variables
            )
            fingerprint = model_metadata.weights_fingerprint(variables)
        self.fingerprint = fingerprint

    def _init_quality(self, metadata, name):
        """The quality scores the metadata (or an in-memory model) declares, checked against
        what the model offers: a SavedModel's `embed_quality` signature, a Keras model's
        `l2_normalize` layer."""
        if metadata is not None:
            scores = tuple(metadata.get("quality_scores", ()))
        elif self._keras_model is not None:
            scores = model_metadata.model_quality_scores(self._keras_model)
        else:
            scores = ()
        if "embedding_norm" in scores:
            if self._signature is not None and self._quality_signature is None:
                raise ModelLoadError(
                    f"{name}: metadata declares the quality score embedding_norm but the "
                    "SavedModel has no embed_quality signature."
                )
            if self._keras_model is not None:
                try:
                    self._keras_model.get_layer("l2_normalize")
                except ValueError:
                    raise ModelLoadError(
                        f"{name}: metadata declares the quality score embedding_norm but the "
                        "model has no l2_normalize layer to read the feature norm before."
                    ) from None
        return scores

    @staticmethod
    def _compile(keras_model, size):
        """`keras_model` as one graph for every batch size: [None, S, S, 3] float32.

        Called eagerly, the model re-runs its Python per layer on every call (dlib_resnet_v1:
        106 ms for one crop against 11 ms as a SavedModel). The signature's unknown batch
        size gives one trace for all batch sizes (`embed` chunks are 1 to 32 crops), where a
        shape-specialised function would trace again for each new size.
        """
        import tensorflow as tf

        spec = tf.TensorSpec([None, size, size, 3], tf.float32, name="pixels")
        return tf.function(lambda x: keras_model(x, training=False), input_signature=[spec])

    def model_info(self):
        """The record a `tfface.gallery.Gallery` keeps to refuse probes of another model."""
        return {
            "name": self.name,
            "version": None,
            "embedding_size": self.embedding_size,
            "fingerprint": self.fingerprint,
        }

    def metadata(self):
        """This model's metadata dict (as `tfface.model_metadata` writes it)."""
        return model_metadata.build_metadata(
            name=self.name,
            image_size=self.image_size,
            embedding_size=self.embedding_size,
            fingerprint=self.fingerprint,
            threshold=self.threshold,
            template=self.template,
            quality_scores=self.quality_scores,
        )

    def _fit_crops(self, crops):
        size = self.image_size
        out = np.empty((len(crops), size, size, 3), np.float32)
        for i, crop in enumerate(crops):
            crop = np.asarray(crop)
            if crop.ndim == 2:
                crop = crop[:, :, None]
            if crop.ndim != 3 or crop.shape[-1] not in (1, 3, 4):
                raise ValueError(
                    f"Aligned crops must be [S, S, 3] images. Received crop {i} of shape "
                    f"{crop.shape}"
                )
            crop = crop[:, :, :3] if crop.shape[-1] != 1 else np.repeat(crop, 3, axis=-1)
            if crop.shape[:2] != (size, size):
                # Resizing keeps an ArcFace crop on the (proportionally scaled) template;
                # a crop aligned on another template cannot be fixed here.
                pil = Image.fromarray(np.clip(crop, 0, 255).astype(np.uint8))
                crop = np.asarray(pil.resize((size, size), Image.BILINEAR))
            out[i] = crop
        return out

    def embed(self, crops):
        """Unit embeddings float32 [N, D] of aligned crops (uint8 or 0–255 floats, [N, S, S, 3]
        or a list of crops; crops of another size are resized to S)."""
        return self._run(crops)[0]

    def embed_with_quality(self, crops):
        """(unit embeddings float32 [N, D], {score name: float32 [N]}) of aligned crops: the
        model's quality scores (`quality_scores`; {} for a model without any)."""
        embeddings, norms = self._run(crops)
        return embeddings, ({} if norms is None else {"embedding_norm": norms})

    def _run(self, crops):
        """(unit embeddings [N, D], feature norms [N] or None)."""
        batch = self._fit_crops(crops) if len(crops) else np.zeros((0, 1), np.float32)
        quality = "embedding_norm" in getattr(self, "quality_scores", ())
        outputs, norms = [], []
        for start in range(0, len(batch), _BATCH):
            chunk = batch[start : start + _BATCH]
            if self._signature is not None:
                import tensorflow as tf

                if quality:
                    out = self._quality_signature(images=tf.constant(chunk))
                    norms.append(out["embedding_norm"].numpy().astype(np.float32))
                    out = out["embeddings"].numpy()
                else:
                    out = self._signature(**{self._input_name: tf.constant(chunk)})
                    out = out[self._output_name].numpy()
            else:
                out = self._compiled(chunk)
                if quality:
                    out, features = out
                    features = np.asarray(features, np.float32)
                    norms.append(np.linalg.norm(features, axis=-1).astype(np.float32))
                out = np.asarray(out)
            outputs.append(out.astype(np.float32))
        if not outputs:
            empty = np.zeros((0,), np.float32) if quality else None
            return np.zeros((0, self.embedding_size), np.float32), empty
        embeddings = np.concatenate(outputs, axis=0)
        # Models built by tfface end in L2Normalize; others are normalised here so that a
        # dot product is always a cosine similarity.
        embeddings = l2_normalize_rows(embeddings, epsilon=1e-12)
        return embeddings, (np.concatenate(norms) if quality else None)
