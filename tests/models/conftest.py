"""Session fixtures for the pretrained dlib_resnet_v1, shared by tests/models (one conversion)."""

import numpy as np
import pytest


@pytest.fixture(scope="session")
def dlib_cache(tmp_path_factory):
    """A private cache dir, so tests neither read nor write the user's ~/.cache/tfface."""
    return str(tmp_path_factory.mktemp("tfface_cache"))


@pytest.fixture(scope="session")
def dlib_models(dlib_cache):
    """(unit-embedding model, raw-descriptor model), converted once per test session."""
    from tfface.models import load_pretrained

    return (
        load_pretrained("dlib_resnet_v1", cache=dlib_cache),
        load_pretrained("dlib_resnet_v1", l2_normalize=False, cache=dlib_cache),
    )


@pytest.fixture(scope="session")
def astronaut_chip():
    """scikit-image's astronaut aligned on the dlib template: a real 150×150 face chip."""
    import skimage.data

    from tfface.align import align_face

    # MTCNN's five points for this photo (tfface.align.FaceDetector, rounded).
    landmarks = [[204.0, 100.0], [245.0, 102.0], [224.0, 126.0], [202.0, 139.0], [244.0, 140.0]]
    return align_face(skimage.data.astronaut(), np.array(landmarks), 150, template="dlib")
