from edgefit.cli import entry

entry()
