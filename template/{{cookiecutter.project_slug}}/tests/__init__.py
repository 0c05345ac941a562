"""Tests of the project, from unit level to a small end-to-end run."""
