"""Method code, one module or package per recipe, named as the recipe."""
