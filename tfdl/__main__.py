"""`python -m tfdl` runs the `tfdl` command."""

import sys

from tfdl.cli import main

sys.exit(main())
