"""Code methods (OSS-Instruct, Case2Code): sources, harvest, sandbox, prompts."""
