"""Encoders: one interface for sentence-transformers models and seq2seq encoders, plus the embedding cache."""
