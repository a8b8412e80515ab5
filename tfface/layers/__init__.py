"""tfface.layers: margin-softmax heads, center loss, normalisation layers."""

from tfface.layers.adaface import AdaFace
from tfface.layers.arcface import ArcFace
from tfface.layers.center_loss import CenterLoss
from tfface.layers.combined_margin import CombinedMargin
from tfface.layers.cosface import CosFace
from tfface.layers.curricularface import CurricularFace
from tfface.layers.elastic_arcface import ElasticArcFace
from tfface.layers.elastic_cosface import ElasticCosFace
from tfface.layers.elastic_margin import ElasticMargin
from tfface.layers.image_normalization import ImageNormalization
from tfface.layers.l2_normalize import L2Normalize
from tfface.layers.lsoftmax import LSoftmax
from tfface.layers.magface import MagFace
from tfface.layers.margin_softmax import MarginBatch
from tfface.layers.margin_softmax import MarginSoftmax
from tfface.layers.multiplicative_margin import MultiplicativeMargin
from tfface.layers.normface import NormFace
from tfface.layers.sphereface import SphereFace
from tfface.layers.subcenter_arcface import SubCenterArcFace

__all__ = [
    "AdaFace",
    "ArcFace",
    "CenterLoss",
    "CombinedMargin",
    "CosFace",
    "CurricularFace",
    "ElasticArcFace",
    "ElasticCosFace",
    "ElasticMargin",
    "ImageNormalization",
    "L2Normalize",
    "LSoftmax",
    "MagFace",
    "MarginBatch",
    "MarginSoftmax",
    "MultiplicativeMargin",
    "NormFace",
    "SphereFace",
    "SubCenterArcFace",
]
