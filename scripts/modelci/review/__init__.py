"""The merge request review: the candidate against what each stand serves, as one note."""
