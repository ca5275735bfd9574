"""Seed curation: embeddings clustered, clusters labelled and graded."""
