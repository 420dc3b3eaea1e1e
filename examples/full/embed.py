"""The example's `store.index.embed`: a deterministic, offline embedding (a hashed bag of words in
64 dimensions, so texts that share words point the same way). A real app names a model instead,
e.g. `"embed": "openai:text-embedding-3-small"` with `"dims": 1536`."""

import hashlib

DIMS = 64


def embed(texts: list[str]) -> list[list[float]]:
    vectors = []
    for text in texts:
        vector = [0.0] * DIMS
        for word in text.lower().split():
            vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % DIMS] += 1.0
        vectors.append(vector)
    return vectors
