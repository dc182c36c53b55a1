"""`python -m engine.cli`: the same as the `sfumato` command."""
import sys

from . import main

sys.exit(main())
