"""Reports of what the stages produced: text lines for the CLI, a self-contained HTML page for verify."""
