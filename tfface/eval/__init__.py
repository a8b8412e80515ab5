"""tfface.eval: face verification protocols and reports.

- `verification`: the LFW 10-fold protocol (accuracy, facenet VAL@FAR), ROC AUC, EER,
  TAR@FAR, JSON + ROC PNG reports (NumPy only).
- `lfw`: LFW `pairs.txt` reading/writing and image paths.
- `bin_pack`: insightface `.bin` packs, read with a restricted unpickler.
- `pairs`: LFW-style pairs for held-out identities, the raw-pixel baseline.
- `identification`: open-set 1:N identification (CMC, TPIR at FPIR, calibrated thresholds).
- `heldout`: the held-out report train.py prints (verification rows next to the raw-pixel
  and untrained baselines, 1:N); `scatter`: a 2-D PCA scatter PNG of embeddings.
- `ijb_protocol`, `template_pooling`, `ijb`, `embedding_cache`: the IJB-B / IJB-C 1:1
  template protocol (the release's meta files, media → template pooling, TAR@FAR).
- `clustering`: faces grouped by person (dlib's Chinese whispers, DBSCAN) and the scores of
  a clustering against known identities (purity, recall, pairwise F1); `tfface cluster`.
- `cli` (`python -m tfface.eval`): evaluate a saved model on LFW, a `.bin` pack or IJB-B/C.
"""

from tfface.eval.bin_pack import evaluate_bin
from tfface.eval.bin_pack import load_bin
from tfface.eval.bin_pack import write_bin
from tfface.eval.identification import IdentificationResult
from tfface.eval.identification import calibrate_threshold
from tfface.eval.identification import evaluate_identification
from tfface.eval.identification import format_identification
from tfface.eval.ijb import IJBResult
from tfface.eval.ijb import embed_loose_crops
from tfface.eval.ijb import evaluate_ijb
from tfface.eval.ijb import format_ijb
from tfface.eval.ijb import write_ijb_report
from tfface.eval.ijb_protocol import IJBFormatError
from tfface.eval.ijb_protocol import IJBProtocol
from tfface.eval.ijb_protocol import load_ijb_protocol
from tfface.eval.lfw import pair_paths
from tfface.eval.lfw import read_pairs
from tfface.eval.lfw import write_pairs
from tfface.eval.pairs import PairIndices
from tfface.eval.pairs import evaluate_embeddings_on_pairs
from tfface.eval.pairs import make_lfw_style_pairs
from tfface.eval.pairs import raw_pixel_embeddings
from tfface.eval.template_pooling import PooledTemplates
from tfface.eval.template_pooling import pool_templates
from tfface.eval.verification import VerificationResult
from tfface.eval.verification import evaluate
from tfface.eval.verification import evaluate_scores
from tfface.eval.verification import format_result
from tfface.eval.verification import write_report

__all__ = [
    "IJBFormatError",
    "IJBProtocol",
    "IJBResult",
    "IdentificationResult",
    "PairIndices",
    "PooledTemplates",
    "VerificationResult",
    "evaluate",
    "calibrate_threshold",
    "embed_loose_crops",
    "evaluate_bin",
    "evaluate_embeddings_on_pairs",
    "evaluate_identification",
    "evaluate_ijb",
    "evaluate_scores",
    "format_identification",
    "format_ijb",
    "format_result",
    "load_bin",
    "load_ijb_protocol",
    "make_lfw_style_pairs",
    "pair_paths",
    "pool_templates",
    "raw_pixel_embeddings",
    "read_pairs",
    "write_bin",
    "write_ijb_report",
    "write_pairs",
    "write_report",
]
