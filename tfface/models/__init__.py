"""tfface.models: backbone registry and the embedding model.

`create_backbone(name, image_size=112, embedding_dim=128, **kwargs)` builds a registered
backbone; `list_backbones()` names them; `@register_backbone` adds one.
`load_pretrained(name)` returns a pretrained embedder (`list_pretrained()`), converted once
from the weight file a pip package installs; `python -m tfface.models list|convert`.
"""

# Importing the architecture modules runs their `@register_backbone` decorators.
from tfface.models import dlib_resnet  # noqa: F401
from tfface.models import inception_resnet_v1  # noqa: F401
from tfface.models import iresnet  # noqa: F401
from tfface.models import mobilefacenet  # noqa: F401
from tfface.models import small_cnn  # noqa: F401
from tfface.models.embedding_model import build_embedding_model
from tfface.models.flops import count_macs
from tfface.models.pretrained import PretrainedWeightsError
from tfface.models.pretrained import get_pretrained_spec
from tfface.models.pretrained import list_pretrained
from tfface.models.pretrained import load_pretrained
from tfface.models.pretrained import load_pretrained_backbone
from tfface.models.registry import backbone_normalization
from tfface.models.registry import create_backbone
from tfface.models.registry import get_backbone_factory
from tfface.models.registry import list_backbones
from tfface.models.registry import register_backbone

__all__ = [
    "PretrainedWeightsError",
    "backbone_normalization",
    "build_embedding_model",
    "count_macs",
    "create_backbone",
    "get_backbone_factory",
    "get_pretrained_spec",
    "list_backbones",
    "list_pretrained",
    "load_pretrained",
    "load_pretrained_backbone",
    "register_backbone",
]
