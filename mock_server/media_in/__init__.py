"""Media in: download a submission's photo and audio within limits, judge them by the profile, and the asset host's
files (uploads and generated samples)."""
