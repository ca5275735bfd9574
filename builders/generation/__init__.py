"""The generation stage and what it needs: engines, checkpoints, models, process placement."""
