"""The interfaces: the CLI, the demo and the pytest plugin. The only code that prints or exits."""
