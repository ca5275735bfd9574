"""What a run leaves: the output folder, the funnel, the dataset card and its figures, the Hub push."""
