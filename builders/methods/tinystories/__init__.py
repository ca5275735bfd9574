"""TinyStories: the vocabulary and the story prompts."""
