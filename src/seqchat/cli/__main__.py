"""`python -m seqchat.cli`: the same as the `seqchat` command."""

import sys

from seqchat.cli import main

sys.exit(main())
