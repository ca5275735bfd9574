"""Exact and MinHash near-dedup (in memory or on Spark), and embedding dedup."""
