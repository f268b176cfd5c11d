"""The ``genlab`` command line: thin wrappers that parse, call the API and print."""
