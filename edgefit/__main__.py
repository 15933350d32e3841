import sys

from edgefit.cli import main

sys.exit(main(sys.argv[1:]))
