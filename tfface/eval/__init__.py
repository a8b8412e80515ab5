"""tfface.eval: face verification protocols and reports.

- `verification`: the LFW 10-fold protocol (accuracy, facenet VAL@FAR), ROC AUC, EER,
  TAR@FAR, JSON + ROC PNG reports (NumPy only).
- `lfw`: LFW `pairs.txt` reading/writing and image paths.
- `bin_pack`: insightface `.bin` packs, read with a restricted unpickler.
- `pairs`: LFW-style pairs for held-out identities, the raw-pixel baseline.
- `identification`: open-set 1:N identification (CMC, TPIR at FPIR, calibrated thresholds).
- `heldout`: the held-out report train.py prints (verification rows next to the raw-pixel
  and untrained baselines, 1:N); `scatter`: a 2-D PCA scatter PNG of embeddings.
- `cli` (`python -m tfface.eval`): evaluate a saved model on LFW or a `.bin` pack.
"""

from tfface.eval.bin_pack import evaluate_bin
from tfface.eval.bin_pack import load_bin
from tfface.eval.bin_pack import write_bin
from tfface.eval.identification import IdentificationResult
from tfface.eval.identification import calibrate_threshold
from tfface.eval.identification import evaluate_identification
from tfface.eval.identification import format_identification
from tfface.eval.lfw import pair_paths
from tfface.eval.lfw import read_pairs
from tfface.eval.lfw import write_pairs
from tfface.eval.pairs import PairIndices
from tfface.eval.pairs import evaluate_embeddings_on_pairs
from tfface.eval.pairs import make_lfw_style_pairs
from tfface.eval.pairs import raw_pixel_embeddings
from tfface.eval.verification import VerificationResult
from tfface.eval.verification import evaluate
from tfface.eval.verification import evaluate_scores
from tfface.eval.verification import format_result
from tfface.eval.verification import write_report

__all__ = [
    "IdentificationResult",
    "PairIndices",
    "VerificationResult",
    "evaluate",
    "calibrate_threshold",
    "evaluate_bin",
    "evaluate_embeddings_on_pairs",
    "evaluate_identification",
    "evaluate_scores",
    "format_identification",
    "format_result",
    "load_bin",
    "make_lfw_style_pairs",
    "pair_paths",
    "raw_pixel_embeddings",
    "read_pairs",
    "write_bin",
    "write_pairs",
    "write_report",
]
