"""tfface.models: backbone registry and the embedding model.

`create_backbone(name, image_size=112, embedding_dim=128, **kwargs)` builds a registered
backbone; `list_backbones()` names them; `@register_backbone` adds one, with the input
normalisation it expects (`backbone_normalization(name)`); `build_embedding_model` puts
that normalisation in front and `L2Normalize` behind. `load_pretrained(name)` returns a
pretrained embedder (`list_pretrained()`), converted once from the weight file a pip
package installs; `python -m tfface.models list|convert`.

Names load on first access and the registry imports an architecture module when one of its
backbones is looked up, so `python -m tfface.models` checks its arguments before Keras and
TensorFlow load.
"""

from tfface._lazy import lazy_getattr

_EXPORTS = {
    "PretrainedWeightsError": "pretrained",
    "backbone_normalization": "registry",
    "build_embedding_model": "embedding_model",
    "count_macs": "flops",
    "create_backbone": "registry",
    "get_backbone_factory": "registry",
    "get_pretrained_spec": "pretrained",
    "list_backbones": "registry",
    "list_pretrained": "pretrained",
    "load_pretrained": "pretrained",
    "load_pretrained_backbone": "pretrained",
    "register_backbone": "registry",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_getattr(__name__, _EXPORTS)
