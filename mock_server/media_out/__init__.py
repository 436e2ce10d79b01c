"""Media out: the placeholder voice, the rendered MP4, and the result files' retention."""
