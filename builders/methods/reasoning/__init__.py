"""Reasoning traces: the think block and the final-answer check."""
