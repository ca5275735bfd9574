"""The generate recipe: chained template steps and samples regrouped."""
