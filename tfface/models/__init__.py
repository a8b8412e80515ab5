"""tfface.models: backbone registry and the embedding model.

`create_backbone(name, image_size=112, embedding_dim=128, **kwargs)` builds a registered
backbone; `list_backbones()` names them; `@register_backbone` adds one.
"""

# Importing the architecture modules runs their `@register_backbone` decorators.
from tfface.models import inception_resnet_v1  # noqa: F401
from tfface.models import iresnet  # noqa: F401
from tfface.models import mobilefacenet  # noqa: F401
from tfface.models import small_cnn  # noqa: F401
from tfface.models.embedding_model import build_embedding_model
from tfface.models.flops import count_macs
from tfface.models.registry import create_backbone
from tfface.models.registry import get_backbone_factory
from tfface.models.registry import list_backbones
from tfface.models.registry import register_backbone

__all__ = [
    "build_embedding_model",
    "count_macs",
    "create_backbone",
    "get_backbone_factory",
    "list_backbones",
    "register_backbone",
]
