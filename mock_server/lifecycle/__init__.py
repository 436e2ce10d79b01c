"""A task's life: its planned trajectory, the scenarios that bend it, the speech estimate it is timed by, and the
callback that ends it."""
