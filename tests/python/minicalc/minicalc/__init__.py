"""A small calculator package with branches, used to prove coverage merges exact."""
