import numpy as np
from sentence_transformers import SentenceTransformer


def test_tiny_model_encodes_normalised_vectors(tiny_model_dir):
    model = SentenceTransformer(str(tiny_model_dir), device="cpu")
    vectors = model.encode(["paka analala", "猫在垫子上睡觉"], convert_to_numpy=True)
    assert vectors.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
