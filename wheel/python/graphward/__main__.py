"""`python -m graphward`: the same as the `graphward` command."""

import sys

from graphward import main

sys.exit(main())
