"""Self-Instruct and Alpaca: seed tasks, parsing, prompts and the ROUGE-L novelty filter."""
