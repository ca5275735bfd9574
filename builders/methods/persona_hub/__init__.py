"""Persona Hub: personas from texts and relations, and the prompts written for them."""
